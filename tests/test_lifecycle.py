"""The run, run step and message verbs: legal moves, refused moves, bookkeeping and cascades."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import FakeClock
from tests.factories import CALL, USAGE, assistant_id, run_in, thread_id
from threadstore import ConflictError, InvalidTransitionError, NotFoundError, Store, ValidationError
from threadstore.openai.states import RUN


def test_start_stamps_started_at_once(store: Store, clock: FakeClock) -> None:
    run = run_in(store, "in_progress")
    first = run.started_at
    clock.advance(10)
    store.runs.require_action(run.id, tool_calls=[CALL])
    store.runs.submit_tool_outputs(run.id, tool_outputs=[{"tool_call_id": "call_1", "output": "sunny"}])
    assert store.runs.start(run.id).started_at == first


def test_an_illegal_move_names_object_id_status_and_target(store: Store) -> None:
    run = run_in(store, "completed")
    with pytest.raises(InvalidTransitionError) as caught:
        store.runs.start(run.id)
    assert (caught.value.kind, caught.value.object_id, caught.value.status, caught.value.target) == (
        "run",
        run.id,
        "completed",
        "in_progress",
    )


def test_an_illegal_move_writes_nothing(store: Store) -> None:
    run = run_in(store, "cancelled")
    with pytest.raises(InvalidTransitionError):
        store.runs.complete(run.id, usage=USAGE)
    assert store.runs.get(run.id) == run


@pytest.mark.parametrize("terminal", sorted(RUN.terminal))
def test_terminal_runs_refuse_every_verb(store: Store, terminal: str) -> None:
    run = run_in(store, terminal)
    verbs: list[Callable[[str], object]] = [
        store.runs.start,
        store.runs.cancel,
        store.runs.mark_cancelled,
        store.runs.complete,
        store.runs.expire,
        lambda i: store.runs.fail(i, code="server_error", message="x"),
        lambda i: store.runs.mark_incomplete(i, reason="max_prompt_tokens"),
        lambda i: store.runs.require_action(i, tool_calls=[CALL]),
    ]
    for verb in verbs:
        with pytest.raises(InvalidTransitionError):
            verb(run.id)
    assert store.runs.get(run.id) == run


def test_unknown_run_is_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.runs.start("run_missing")


def test_cancel_of_a_queued_run_ends_it_at_once(store: Store, clock: FakeClock) -> None:
    run = store.runs.cancel(run_in(store, "queued").id)
    assert (run.status, run.cancelled_at, run.expires_at) == ("cancelled", clock.seconds, None)


def test_cancel_of_an_in_progress_run_waits_for_the_worker(store: Store, clock: FakeClock) -> None:
    run = run_in(store, "in_progress")
    assert store.runs.cancel(run.id).status == "cancelling"
    clock.advance(3)
    cancelled = store.runs.mark_cancelled(run.id)
    assert (cancelled.status, cancelled.cancelled_at) == ("cancelled", clock.seconds)


def test_cancel_of_a_cancelling_run_is_refused(store: Store) -> None:
    run = run_in(store, "cancelling")
    with pytest.raises(InvalidTransitionError):
        store.runs.cancel(run.id)


def test_complete_records_usage_and_clears_expires_at(store: Store, clock: FakeClock) -> None:
    run = run_in(store, "in_progress")
    done = store.runs.complete(run.id, usage={"prompt_tokens": 3, "completion_tokens": 4})
    assert done.to_api()["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert (done.completed_at, done.expires_at) == (clock.seconds, None)


def test_fail_records_last_error(store: Store) -> None:
    run = run_in(store, "queued")
    failed = store.runs.fail(run.id, code="invalid_prompt", message="bad")
    assert failed.to_api()["last_error"] == {"code": "invalid_prompt", "message": "bad"}
    assert failed.failed_at is not None


def test_fail_with_an_unknown_code_is_refused(store: Store) -> None:
    run = run_in(store, "in_progress")
    with pytest.raises(ValidationError):
        store.runs.fail(run.id, code="oops", message="x")  # type: ignore[arg-type]
    assert store.runs.get(run.id).status == "in_progress"


def test_expired_run_keeps_its_deadline(store: Store) -> None:
    run = run_in(store, "queued")
    assert store.runs.expire(run.id).expires_at == run.expires_at


def test_incomplete_run_has_incomplete_details(store: Store) -> None:
    run = run_in(store, "incomplete")
    assert run.to_api()["incomplete_details"] == {"reason": "max_prompt_tokens"}


def test_require_action_records_the_calls_in_a_new_tool_calls_step(store: Store) -> None:
    run = run_in(store, "requires_action")
    assert run.to_api()["required_action"]["submit_tool_outputs"]["tool_calls"] == [CALL]
    (step,) = store.run_steps.list(run.id)
    assert step.type == "tool_calls"
    assert step.step_details["tool_calls"] == [{**CALL, "function": {**CALL["function"], "output": None}}]


def test_require_action_uses_the_step_that_already_holds_the_calls(store: Store) -> None:
    run = run_in(store, "in_progress")
    held = {**CALL, "function": {**CALL["function"], "output": None}}
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": [held]})
    store.runs.require_action(run.id, tool_calls=[CALL])
    assert [s.id for s in store.run_steps.list(run.id)] == [step.id]
    assert store.run_steps.get(step.id).step_details["tool_calls"] == [held]


def test_submit_tool_outputs_writes_outputs_completes_the_step_and_requeues(store: Store) -> None:
    run = run_in(store, "requires_action")
    queued = store.runs.submit_tool_outputs(run.id, tool_outputs=[{"tool_call_id": "call_1", "output": "sunny"}])
    assert (queued.status, queued.required_action) == ("queued", None)
    (step,) = store.run_steps.list(run.id)
    assert step.status == "completed"
    assert step.step_details["tool_calls"][0]["function"]["output"] == "sunny"


@pytest.mark.parametrize(
    "outputs",
    [
        [],
        [{"tool_call_id": "call_other", "output": "x"}],
        [{"tool_call_id": "call_1", "output": "a"}, {"tool_call_id": "call_1", "output": "b"}],
        [{"tool_call_id": "call_1", "output": "a"}, {"tool_call_id": "call_2", "output": "b"}],
    ],
)
def test_submit_tool_outputs_needs_exactly_the_calls_asked_for(store: Store, outputs: list[dict[str, str]]) -> None:
    run = run_in(store, "requires_action")
    with pytest.raises(ValidationError):
        store.runs.submit_tool_outputs(run.id, tool_outputs=outputs)
    assert store.runs.get(run.id).status == "requires_action"


def test_submit_tool_outputs_to_a_run_not_requiring_action_is_refused(store: Store) -> None:
    run = run_in(store, "in_progress")
    with pytest.raises(InvalidTransitionError):
        store.runs.submit_tool_outputs(run.id, tool_outputs=[{"tool_call_id": "call_1", "output": "x"}])


@pytest.mark.parametrize(
    ("end", "step_status", "message_status", "reason"),
    [
        ("completed", "completed", "completed", None),
        ("incomplete", "completed", "incomplete", "max_tokens"),
        ("cancelled", "cancelled", "incomplete", "run_cancelled"),
        ("failed", "failed", "incomplete", "run_failed"),
        ("expired", "expired", "incomplete", "run_expired"),
    ],
)
def test_a_run_that_ends_ends_its_steps_and_messages(
    store: Store, clock: FakeClock, end: str, step_status: str, message_status: str, reason: str | None
) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="..", run_id=run.id, status="in_progress")
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    clock.advance(7)
    enders: dict[str, Callable[[], object]] = {
        "completed": lambda: store.runs.complete(run.id),
        "incomplete": lambda: store.runs.mark_incomplete(run.id, reason="max_completion_tokens"),
        "cancelled": lambda: (store.runs.cancel(run.id), store.runs.mark_cancelled(run.id)),
        "failed": lambda: store.runs.fail(run.id, code="rate_limit_exceeded", message="slow"),
        "expired": lambda: store.runs.expire(run.id),
    }
    enders[end]()
    ended_step = store.run_steps.get(step.id)
    ended_message = store.messages.get(message.id)
    assert ended_step.status == step_status
    assert getattr(ended_step, f"{step_status}_at") == clock.seconds
    assert ended_message.status == message_status
    assert ended_message.incomplete_reason == reason
    if end == "failed":
        assert ended_step.to_api()["last_error"] == {"code": "rate_limit_exceeded", "message": "slow"}


def test_cancelling_a_run_that_requires_action_cancels_its_tool_calls_step(store: Store) -> None:
    run = run_in(store, "requires_action")
    store.runs.cancel(run.id)
    (step,) = store.run_steps.list(run.id)
    assert step.status == "cancelled"


def test_the_cascade_leaves_steps_that_already_ended(store: Store) -> None:
    run = run_in(store, "in_progress")
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    store.run_steps.complete(step.id)
    store.runs.fail(run.id, code="server_error", message="x")
    assert store.run_steps.get(step.id).status == "completed"


def test_expire_overdue_expires_each_overdue_run_once(store: Store, clock: FakeClock) -> None:
    overdue = [run_in(store, status).id for status in ("queued", "in_progress", "requires_action")]
    clock.advance(600)
    fresh = run_in(store, "queued").id
    assert sorted(r.id for r in store.runs.expire_overdue()) == sorted(overdue)
    assert store.runs.expire_overdue() == []
    assert store.runs.get(fresh).status == "queued"
    assert {store.runs.get(i).status for i in overdue} == {"expired"}


def test_claim_next_starts_the_oldest_queued_unexpired_run(store: Store, clock: FakeClock) -> None:
    stale = run_in(store, "queued")
    clock.advance(1)
    first = run_in(store, "queued")
    clock.advance(1)
    second = run_in(store, "queued")
    clock.advance(598)  # now is `stale`s deadline; the others have a second or two left
    claimed = store.runs.claim_next()
    assert claimed is not None
    assert (claimed.id, claimed.status, claimed.started_at) == (first.id, "in_progress", clock.seconds)
    claimed_again = store.runs.claim_next()
    assert claimed_again is not None and claimed_again.id == second.id
    assert store.runs.claim_next() is None
    assert store.runs.get(stale.id).status == "queued"


def test_steps_are_added_only_to_in_progress_runs(store: Store) -> None:
    run = run_in(store, "queued")
    with pytest.raises(ConflictError):
        store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})


def test_step_verbs_stamp_their_timestamps(store: Store, clock: FakeClock) -> None:
    run = run_in(store, "in_progress")
    for verb, stamp in [("complete", "completed_at"), ("cancel", "cancelled_at"), ("expire", "expired_at")]:
        step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
        clock.advance(1)
        ended = getattr(store.run_steps, verb)(step.id)
        assert getattr(ended, stamp) == clock.seconds
        with pytest.raises(InvalidTransitionError):
            store.run_steps.complete(step.id)


def test_step_details_change_only_while_in_progress(store: Store) -> None:
    run = run_in(store, "in_progress")
    step = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    updated = store.run_steps.update_details(step.id, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    assert updated.step_details["tool_calls"][0]["id"] == "call_1"
    store.run_steps.complete(step.id)
    with pytest.raises(ConflictError):
        store.run_steps.update_details(step.id, step_details={"type": "tool_calls", "tool_calls": []})


def test_message_content_changes_only_while_in_progress(store: Store) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="", run_id=run.id, status="in_progress")
    assert store.messages.update_content(message.id, content="partial").content[0]["text"]["value"] == "partial"
    store.messages.complete(message.id)
    with pytest.raises(ConflictError):
        store.messages.update_content(message.id, content="late")


def test_a_message_not_written_by_the_active_run_is_refused(store: Store) -> None:
    run = run_in(store, "queued")
    with pytest.raises(ConflictError, match=f"Can't add messages to {run.thread_id} while a run {run.id} is active"):
        store.messages.create(run.thread_id, role="user", content="hello?")


def test_the_active_run_may_write_messages_to_its_thread(store: Store) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="hi", run_id=run.id)
    assert message.run_id == run.id


def test_messages_are_accepted_again_once_the_run_ends(store: Store) -> None:
    run = run_in(store, "completed")
    assert store.messages.create(run.thread_id, role="user", content="next").run_id is None


def test_the_database_refuses_a_second_active_run_even_without_the_python_check(store: Store) -> None:
    import sqlalchemy as sa

    from threadstore.openai.models import runs

    run = run_in(store, "queued")
    with store.engine.connect() as connection, connection.begin():
        row = dict(connection.execute(sa.select(runs).where(runs.c.id == run.id)).one()._mapping)
    row["id"] = "run_duplicate"
    with pytest.raises(sa.exc.IntegrityError), store.engine.connect() as connection, connection.begin():
        connection.execute(sa.insert(runs).values(**row))


def test_new_run_on_a_thread_whose_run_ended(store: Store) -> None:
    run = run_in(store, "failed")
    again = store.runs.create(run.thread_id, assistant_id=run.assistant_id)
    assert again.status == "queued"


def test_runs_on_different_threads_may_be_active_together(store: Store) -> None:
    assistant = assistant_id(store)
    for _ in range(3):
        store.runs.create(thread_id(store), assistant_id=assistant)
    assert store.runs.claim_next() is not None


def test_submitting_outputs_after_the_tool_calls_step_ended_is_refused_and_writes_nothing(store: Store) -> None:
    run = run_in(store, "requires_action")
    (step,) = store.run_steps.list(run.id)
    store.run_steps.complete(step.id)
    with pytest.raises(ConflictError, match="no in-progress tool_calls step holds them"):
        store.runs.submit_tool_outputs(run.id, tool_outputs=[{"tool_call_id": "call_1", "output": "x"}])
    assert store.runs.get(run.id).status == "requires_action"


def test_require_action_records_calls_in_a_new_step_when_no_step_holds_them_all(store: Store) -> None:
    run = run_in(store, "in_progress")
    other = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    store.runs.require_action(run.id, tool_calls=[CALL])
    steps = {step.id: step for step in store.run_steps.list(run.id)}
    assert steps[other.id].step_details["tool_calls"] == []
    (holder,) = [s for s in steps.values() if s.id != other.id]
    assert [c["id"] for c in holder.step_details["tool_calls"]] == ["call_1"]


def test_a_run_that_has_ended_can_write_no_more_messages(store: Store) -> None:
    run = run_in(store, "completed")
    with pytest.raises(ConflictError, match="can write no more messages"):
        store.messages.create(run.thread_id, role="assistant", content="late", run_id=run.id, status="in_progress")


def test_a_deleted_assistant_cannot_author_messages(store: Store) -> None:
    assistant = assistant_id(store)
    store.assistants.delete(assistant)
    with pytest.raises(NotFoundError):
        store.messages.create(thread_id(store), role="assistant", content="x", assistant_id=assistant)


def test_updated_content_is_what_a_later_read_returns(store: Store) -> None:
    run = run_in(store, "in_progress")
    message = store.messages.create(run.thread_id, role="assistant", content="", run_id=run.id, status="in_progress")
    store.messages.update_content(message.id, content=[{"type": "text", "text": "streamed"}])
    with store.transaction() as tx:
        locked = tx.messages.get(message.id, thread_id=run.thread_id, for_update=True)
    assert locked.content == [{"type": "text", "text": {"value": "streamed", "annotations": []}}]
