"""OpenAI runs under leased claims: a claim raises the attempt and may hold a lease, `heartbeat`
extends it, `requeue_stale` takes back runs whose lease expired, and every worker verb given a
stale attempt (on the run, its steps and its messages) is refused and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import FakeClock, snapshot
from tests.factories import CALL, USAGE, assistant_id, reply_in_progress, thread_id
from threadstore import (
    ConflictError,
    InvalidTransitionError,
    Message,
    NotFoundError,
    Run,
    RunStep,
    Store,
    ValidationError,
)

LEASE = 60
OUTPUTS = [{"tool_call_id": "call_1", "output": "sunny"}]


def queued(store: Store) -> Run:
    return store.runs.create(thread_id(store), assistant_id=assistant_id(store))


def claimed(store: Store, lease_seconds: int | None = LEASE) -> Run:
    run = queued(store)
    got = store.runs.claim_next(lease_seconds=lease_seconds)
    assert got is not None and got.id == run.id
    return got


def reclaimed(store: Store, clock: FakeClock) -> Run:
    """A run whose first worker's lease expired, now on its second claim."""
    first = claimed(store)
    clock.advance(LEASE)
    assert [run.id for run in store.runs.requeue_stale()] == [first.id]
    second = store.runs.claim_next(lease_seconds=LEASE)
    assert second is not None and second.id == first.id and second.attempt == 2
    return second


def test_a_claim_without_a_lease_raises_the_attempt_and_holds_no_lease(store: Store) -> None:
    run = claimed(store, lease_seconds=None)
    assert (run.status, run.attempt, run.lease_expires_at) == ("in_progress", 1, None)


def test_a_leased_claim_holds_the_run_until_the_lease_ends(store: Store, clock: FakeClock) -> None:
    run = claimed(store)
    assert run.attempt == 1
    assert run.lease_expires_at == (clock.seconds + LEASE) * 1_000_000


def test_attempt_and_lease_are_not_api_fields(store: Store) -> None:
    api = claimed(store).to_api()
    assert "attempt" not in api and "lease_expires_at" not in api
    assert api == store.runs.get(api["id"]).to_api()


def test_a_lease_of_no_seconds_is_refused(store: Store) -> None:
    queued(store)
    before = snapshot(store)
    with pytest.raises(ValidationError):
        store.runs.claim_next(lease_seconds=0)
    assert snapshot(store) == before


def test_heartbeat_extends_the_lease_from_now(store: Store, clock: FakeClock) -> None:
    run = claimed(store)
    clock.advance(LEASE - 1)
    beat = store.runs.heartbeat(run.id, attempt=run.attempt, lease_seconds=LEASE)
    assert beat.lease_expires_at == (clock.seconds + LEASE) * 1_000_000
    clock.advance(LEASE - 1)
    assert store.runs.requeue_stale() == []


def test_heartbeat_with_a_stale_attempt_is_refused_and_writes_nothing(store: Store, clock: FakeClock) -> None:
    run = reclaimed(store, clock)
    before = snapshot(store)
    with pytest.raises(ConflictError, match="stale") as caught:
        store.runs.heartbeat(run.id, attempt=1)
    assert not isinstance(caught.value, InvalidTransitionError)
    assert snapshot(store) == before


def test_heartbeat_of_a_run_no_worker_holds_is_an_invalid_transition(store: Store) -> None:
    run = claimed(store)
    store.runs.require_action(run.id, tool_calls=[CALL], attempt=run.attempt)
    with pytest.raises(InvalidTransitionError):
        store.runs.heartbeat(run.id, attempt=run.attempt)


def test_heartbeat_of_an_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.runs.heartbeat("run_nothing", attempt=1)


def test_a_run_waiting_for_tool_outputs_holds_no_lease(store: Store) -> None:
    run = claimed(store)
    assert store.runs.require_action(run.id, tool_calls=[CALL]).lease_expires_at is None


def test_requeue_stale_leaves_runs_whose_lease_holds(store: Store, clock: FakeClock) -> None:
    run = claimed(store)
    clock.advance(LEASE - 1)
    assert store.runs.requeue_stale() == []
    assert store.runs.get(run.id).status == "in_progress"


def test_requeue_stale_never_takes_back_a_run_claimed_without_a_lease(store: Store, clock: FakeClock) -> None:
    run = claimed(store, lease_seconds=None)
    clock.advance(500)  # before the run's own expiry (600 s)
    assert store.runs.requeue_stale() == []
    assert store.runs.get(run.id).status == "in_progress"


def test_a_run_whose_lease_expired_is_queued_again_and_claimed_anew(store: Store, clock: FakeClock) -> None:
    run = claimed(store)
    clock.advance(LEASE)
    (requeued,) = store.runs.requeue_stale()
    assert (requeued.id, requeued.status, requeued.attempt, requeued.lease_expires_at) == (run.id, "queued", 1, None)
    assert requeued.started_at == run.started_at and requeued.expires_at == run.expires_at
    again = store.runs.claim_next(lease_seconds=LEASE)
    assert again is not None and (again.id, again.attempt) == (run.id, 2)


def test_a_requeue_streams_the_run_queued_again(store: Store, clock: FakeClock) -> None:
    run = claimed(store)
    clock.advance(LEASE)
    store.runs.requeue_stale()
    names = [event.event for event in store.events.list(run_id=run.id)]
    assert names[-2:] == ["thread.run.in_progress", "thread.run.queued"]


def test_a_stale_run_fails_after_its_last_attempt(store: Store, clock: FakeClock) -> None:
    run = reclaimed(store, clock)
    clock.advance(LEASE)
    (failed,) = store.runs.requeue_stale(max_attempts=2)
    assert (failed.id, failed.status, failed.failed_at) == (run.id, "failed", clock.seconds)
    assert failed.last_error is not None and failed.last_error.code == "server_error"
    assert (failed.lease_expires_at, failed.expires_at) == (None, None)
    assert store.runs.claim_next() is None


def test_a_stale_cancelling_run_is_cancelled(store: Store, clock: FakeClock) -> None:
    run = claimed(store)
    store.runs.cancel(run.id)
    clock.advance(LEASE)
    (cancelled,) = store.runs.requeue_stale()
    assert (cancelled.status, cancelled.cancelled_at) == ("cancelled", clock.seconds)


def test_a_taken_back_attempt_ends_its_steps_and_messages(store: Store, clock: FakeClock) -> None:
    run = claimed(store)
    message, step = reply_in_progress(store, run)
    clock.advance(LEASE)
    store.runs.requeue_stale()
    ended_step = store.run_steps.get(step.id, run_id=run.id)
    assert ended_step.status == "failed" and ended_step.last_error is not None
    assert ended_step.last_error.code == "server_error"
    ended_message = store.messages.get(message.id, thread_id=run.thread_id)
    assert (ended_message.status, ended_message.incomplete_details) == ("incomplete", {"reason": "run_failed"})


def test_requeue_stale_refuses_a_bad_max_attempts(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.runs.requeue_stale(max_attempts=0)


# --- every worker verb is fenced by the attempt -----------------------------------------------------


def _in_progress(store: Store, clock: FakeClock) -> Run:
    return reclaimed(store, clock)


def _cancelling(store: Store, clock: FakeClock) -> Run:
    run = reclaimed(store, clock)
    return store.runs.cancel(run.id)


def _queued_after_outputs(store: Store, clock: FakeClock) -> Run:
    run = reclaimed(store, clock)
    store.runs.require_action(run.id, tool_calls=[CALL], attempt=2)
    return store.runs.submit_tool_outputs(run.id, tool_outputs=OUTPUTS)


Setup = Callable[[Store, FakeClock], Run]
Verb = Callable[[Store, str, int], Any]
WORKER_VERBS: dict[str, tuple[Setup, Verb]] = {
    "start": (_queued_after_outputs, lambda s, i, a: s.runs.start(i, attempt=a)),
    "require_action": (_in_progress, lambda s, i, a: s.runs.require_action(i, tool_calls=[CALL], attempt=a)),
    "complete": (_in_progress, lambda s, i, a: s.runs.complete(i, usage=USAGE, attempt=a)),
    "fail": (_in_progress, lambda s, i, a: s.runs.fail(i, code="server_error", message="boom", attempt=a)),
    "mark_incomplete": (_in_progress, lambda s, i, a: s.runs.mark_incomplete(i, attempt=a)),
    "mark_cancelled": (_cancelling, lambda s, i, a: s.runs.mark_cancelled(i, attempt=a)),
    "heartbeat": (_in_progress, lambda s, i, a: s.runs.heartbeat(i, attempt=a)),
}


@pytest.mark.parametrize("verb", sorted(WORKER_VERBS))
def test_a_worker_verb_with_a_stale_attempt_is_refused_and_writes_nothing(
    store: Store, clock: FakeClock, verb: str
) -> None:
    setup, call = WORKER_VERBS[verb]
    run = setup(store, clock)
    before = snapshot(store)
    with pytest.raises(ConflictError, match="stale"):
        call(store, run.id, 1)
    assert snapshot(store) == before


@pytest.mark.parametrize("verb", sorted(WORKER_VERBS))
def test_a_worker_verb_with_the_current_attempt_proceeds(store: Store, clock: FakeClock, verb: str) -> None:
    setup, call = WORKER_VERBS[verb]
    run = setup(store, clock)
    assert call(store, run.id, 2).attempt == 2


@pytest.mark.parametrize("attempt", [-1, "1", 1.5, True])
def test_a_bad_attempt_is_refused_and_writes_nothing(store: Store, clock: FakeClock, attempt: Any) -> None:
    run = claimed(store)
    before = snapshot(store)
    with pytest.raises(ValidationError):
        store.runs.complete(run.id, attempt=attempt)
    assert snapshot(store) == before


def test_a_fenced_move_the_status_forbids_is_still_an_invalid_transition(store: Store) -> None:
    run = claimed(store)
    store.runs.complete(run.id, attempt=run.attempt)
    with pytest.raises(InvalidTransitionError):
        store.runs.complete(run.id, attempt=run.attempt)


# --- the worker's writes to its run's steps and messages are fenced by the same attempt --------------


class Reply:
    """A run on its second claim, with the assistant message and message_creation step its
    current worker is writing."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.run = reclaimed(store, clock)
        self.message, self.step = reply_in_progress(store, self.run)


WrittenVerb = Callable[[Store, Reply, int], Message | RunStep]


def _new_step(store: Store, reply: Reply, attempt: int) -> RunStep:
    details = {"type": "message_creation", "message_creation": {"message_id": reply.message.id}}
    return store.run_steps.create(reply.run.id, step_details=details, attempt=attempt)


def _new_message(store: Store, reply: Reply, attempt: int) -> Message:
    run = reply.run
    return store.messages.create(run.thread_id, role="assistant", content="Hi", run_id=run.id, attempt=attempt)


def _new_details(store: Store, reply: Reply, attempt: int) -> RunStep:
    details = {"type": "message_creation", "message_creation": {"message_id": reply.message.id}}
    return store.run_steps.update_details(reply.step.id, step_details=details, attempt=attempt)


WRITTEN_VERBS: dict[str, WrittenVerb] = {
    "run_steps.create": _new_step,
    "run_steps.update_details": _new_details,
    "run_steps.complete": lambda s, r, a: s.run_steps.complete(r.step.id, usage=USAGE, attempt=a),
    "run_steps.fail": lambda s, r, a: s.run_steps.fail(r.step.id, code="server_error", message="boom", attempt=a),
    "run_steps.cancel": lambda s, r, a: s.run_steps.cancel(r.step.id, attempt=a),
    "run_steps.expire": lambda s, r, a: s.run_steps.expire(r.step.id, attempt=a),
    "messages.create": _new_message,
    "messages.append_text": lambda s, r, a: s.messages.append_text(r.message.id, text="lo", attempt=a),
    "messages.update_content": lambda s, r, a: s.messages.update_content(r.message.id, content="Hello", attempt=a),
    "messages.complete": lambda s, r, a: s.messages.complete(r.message.id, attempt=a),
    "messages.mark_incomplete": lambda s, r, a: s.messages.mark_incomplete(
        r.message.id, reason="max_tokens", attempt=a
    ),
}


@pytest.mark.parametrize("verb", sorted(WRITTEN_VERBS))
def test_a_step_or_message_verb_with_a_stale_attempt_is_refused_and_writes_nothing(
    store: Store, clock: FakeClock, verb: str
) -> None:
    reply = Reply(store, clock)
    before = snapshot(store)
    with pytest.raises(ConflictError, match="stale"):
        WRITTEN_VERBS[verb](store, reply, 1)
    assert snapshot(store) == before


@pytest.mark.parametrize("verb", sorted(WRITTEN_VERBS))
def test_a_step_or_message_verb_with_the_current_attempt_proceeds(store: Store, clock: FakeClock, verb: str) -> None:
    reply = Reply(store, clock)
    written = WRITTEN_VERBS[verb](store, reply, 2)
    assert written.run_id == reply.run.id


def test_a_worker_that_lost_its_lease_is_told_its_attempt_is_stale_when_it_ends_its_own_step(
    store: Store, clock: FakeClock
) -> None:
    run = claimed(store)
    _, step = reply_in_progress(store, run)
    clock.advance(LEASE)
    store.runs.requeue_stale()
    store.runs.claim_next(lease_seconds=LEASE)
    before = snapshot(store)
    with pytest.raises(ConflictError, match="stale"):
        store.run_steps.complete(step.id, attempt=run.attempt)
    assert snapshot(store) == before


def test_an_attempt_for_a_message_without_a_run_is_refused_and_writes_nothing(store: Store) -> None:
    thread = thread_id(store)
    before = snapshot(store)
    with pytest.raises(ValidationError, match="run_id"):
        store.messages.create(thread, role="user", content="Hi", attempt=1)
    assert snapshot(store) == before


def test_an_attempt_for_a_message_no_run_wrote_is_refused_and_writes_nothing(store: Store) -> None:
    message = store.messages.create(thread_id(store), role="user", content="Hi", status="in_progress")
    before = snapshot(store)
    with pytest.raises(ValidationError, match="not written by a run"):
        store.messages.complete(message.id, attempt=1)
    assert snapshot(store) == before


def test_a_fenced_write_to_an_unknown_step_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.run_steps.complete("step_nothing", attempt=1)


@pytest.mark.parametrize("attempt", [-1, "1", 1.5, True])
def test_a_bad_attempt_on_a_step_is_refused_and_writes_nothing(store: Store, clock: FakeClock, attempt: Any) -> None:
    reply = Reply(store, clock)
    before = snapshot(store)
    with pytest.raises(ValidationError):
        store.run_steps.complete(reply.step.id, attempt=attempt)
    assert snapshot(store) == before
