"""LangGraph threads and runs: shapes, multitask strategies, leased claims with fencing, the
derived thread status, lists and search."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from langgraph_sdk.schema import Run, Thread
from pydantic import TypeAdapter

from tests.conftest import FakeClock
from threadstore import ConflictError, InvalidTransitionError, NotFoundError, Store, ValidationError
from threadstore.langgraph.states import RUN
from threadstore.types import FinishStatus

RUN_KEYS = set(Run.__annotations__) | {"kwargs"}
THREAD_KEYS = set(Thread.__annotations__)


def assert_run_shape(shape: dict[str, Any]) -> None:
    TypeAdapter(Run).validate_python(shape)
    assert set(shape) == RUN_KEYS


def new_thread(store: Store, **metadata: Any) -> str:
    return store.langgraph.threads.create(metadata=metadata).thread_id


def running(store: Store, lease_seconds: int = 60) -> Any:
    thread = new_thread(store)
    run = store.langgraph.runs.create(thread, assistant_id="agent")
    claimed = store.langgraph.runs.claim_next(lease_seconds=lease_seconds)
    assert claimed is not None and claimed.run_id == run.run_id
    return claimed


# --- shapes -----------------------------------------------------------------------------------


def test_thread_matches_the_sdk_thread(store: Store) -> None:
    shape = store.langgraph.threads.create(metadata={"user": "1"}).to_api()
    TypeAdapter(Thread).validate_python(shape)
    assert set(shape) == THREAD_KEYS
    assert shape["status"] == "idle"


@pytest.mark.parametrize("status", sorted(RUN.statuses))
def test_run_in_every_status_matches_the_sdk_run_with_kwargs(store: Store, status: str, clock: FakeClock) -> None:
    runs = store.langgraph.runs
    thread = new_thread(store)
    run = runs.create(thread, assistant_id="agent", kwargs={"input": {"q": "hi"}})
    if status == "interrupted":
        run = runs.cancel(run.run_id) or run
    elif status != "pending":
        run = runs.claim_next() or run
        if status in ("success", "error", "timeout"):
            run = runs.finish(run.run_id, attempt=run.attempt, status=status)  # type: ignore[arg-type]  # one of the three, by the if
    assert run.status == status
    assert_run_shape(run.to_api())
    assert run.to_api()["kwargs"] == {"input": {"q": "hi"}}


def test_times_are_iso_8601_with_a_utc_offset(store: Store, clock: FakeClock) -> None:
    clock.advance(0.25)
    shape = store.langgraph.threads.create().to_api()
    assert shape["created_at"] == "2026-01-01T00:00:00.250000+00:00"


def test_ids_are_uuids_and_a_caller_may_choose_one(store: Store) -> None:
    chosen = str(uuid.uuid4())
    assert store.langgraph.threads.create(thread_id=chosen).thread_id == chosen
    made = store.langgraph.threads.create().thread_id
    assert str(uuid.UUID(made)) == made


def test_a_thread_id_that_is_not_a_uuid_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.langgraph.threads.create(thread_id="not-a-uuid")


def test_creating_an_existing_thread_raises_or_returns_it(store: Store) -> None:
    thread = store.langgraph.threads.create(metadata={"a": 1})
    with pytest.raises(ConflictError):
        store.langgraph.threads.create(thread_id=thread.thread_id)
    again = store.langgraph.threads.create(thread_id=thread.thread_id, metadata={"b": 2}, if_exists="do_nothing")
    assert again == thread


def test_thread_update_merges_metadata_and_moves_updated_at(store: Store, clock: FakeClock) -> None:
    thread = store.langgraph.threads.create(metadata={"a": 1, "b": 2})
    clock.advance(5)
    updated = store.langgraph.threads.update(thread.thread_id, metadata={"b": 3, "c": 4})
    assert updated.metadata == {"a": 1, "b": 3, "c": 4}
    assert updated.updated_at == thread.updated_at + 5_000_000


def test_deleting_a_thread_deletes_its_runs(store: Store) -> None:
    thread = new_thread(store)
    run = store.langgraph.runs.create(thread, assistant_id="agent")
    store.langgraph.threads.delete(thread)
    with pytest.raises(NotFoundError):
        store.langgraph.runs.get(run.run_id)


# --- multitask strategies -------------------------------------------------------------------


def test_enqueue_is_the_default_and_the_new_run_waits(store: Store) -> None:
    thread = new_thread(store)
    first = store.langgraph.runs.create(thread, assistant_id="agent")
    second = store.langgraph.runs.create(thread, assistant_id="agent")
    assert (second.multitask_strategy, second.status) == ("enqueue", "pending")
    assert store.langgraph.runs.get(first.run_id).status == "pending"


def test_reject_refuses_the_new_run_and_writes_nothing(store: Store) -> None:
    thread = new_thread(store)
    store.langgraph.runs.create(thread, assistant_id="agent")
    with pytest.raises(ConflictError):
        store.langgraph.runs.create(thread, assistant_id="agent", multitask_strategy="reject")
    assert len(store.langgraph.runs.list(thread)) == 1


def test_reject_on_an_idle_thread_creates_the_run(store: Store) -> None:
    thread = new_thread(store)
    assert store.langgraph.runs.create(thread, assistant_id="agent", multitask_strategy="reject").status == "pending"


def test_interrupt_interrupts_the_pending_and_running_runs(store: Store) -> None:
    claimed = running(store)
    queued = store.langgraph.runs.create(claimed.thread_id, assistant_id="agent")
    new = store.langgraph.runs.create(claimed.thread_id, assistant_id="agent", multitask_strategy="interrupt")
    assert {store.langgraph.runs.get(r).status for r in (claimed.run_id, queued.run_id)} == {"interrupted"}
    assert new.status == "pending"


def test_rollback_deletes_the_pending_and_running_runs(store: Store) -> None:
    claimed = running(store)
    new = store.langgraph.runs.create(claimed.thread_id, assistant_id="agent", multitask_strategy="rollback")
    assert [r.run_id for r in store.langgraph.runs.list(claimed.thread_id)] == [new.run_id]


# --- claims, leases, fencing ---------------------------------------------------------------


def test_claim_takes_the_oldest_pending_run_of_a_thread_without_a_running_run(store: Store, clock: FakeClock) -> None:
    busy_thread = running(store)
    clock.advance(1)
    store.langgraph.runs.create(busy_thread.thread_id, assistant_id="agent")
    clock.advance(1)
    other = store.langgraph.runs.create(new_thread(store), assistant_id="agent")
    claimed = store.langgraph.runs.claim_next()
    assert claimed is not None and claimed.run_id == other.run_id
    assert store.langgraph.runs.claim_next() is None


def test_a_claim_starts_attempt_one_with_a_lease(store: Store, clock: FakeClock) -> None:
    claimed = running(store, lease_seconds=30)
    assert (claimed.status, claimed.attempt) == ("running", 1)
    assert claimed.lease_expires_at == claimed.updated_at + 30_000_000


def test_heartbeat_extends_the_lease(store: Store, clock: FakeClock) -> None:
    claimed = running(store, lease_seconds=30)
    clock.advance(20)
    beat = store.langgraph.runs.heartbeat(claimed.run_id, attempt=1, lease_seconds=30)
    assert beat.lease_expires_at == claimed.lease_expires_at + 20_000_000
    clock.advance(20)
    assert store.langgraph.runs.requeue_stale() == []


def test_an_expired_lease_is_requeued_and_claimed_again_as_the_next_attempt(store: Store, clock: FakeClock) -> None:
    claimed = running(store, lease_seconds=30)
    clock.advance(31)
    (requeued,) = store.langgraph.runs.requeue_stale()
    assert (requeued.status, requeued.lease_expires_at) == ("pending", None)
    again = store.langgraph.runs.claim_next()
    assert again is not None and (again.run_id, again.attempt) == (claimed.run_id, 2)


def test_a_stale_worker_cannot_overwrite_its_successors_result(store: Store, clock: FakeClock) -> None:
    claimed = running(store, lease_seconds=30)
    clock.advance(31)
    store.langgraph.runs.requeue_stale()
    successor = store.langgraph.runs.claim_next()
    assert successor is not None
    store.langgraph.runs.finish(claimed.run_id, attempt=successor.attempt, status="success")
    stale_calls: list[Callable[[], object]] = [
        lambda: store.langgraph.runs.finish(claimed.run_id, attempt=1, status="error"),
        lambda: store.langgraph.runs.heartbeat(claimed.run_id, attempt=1),
    ]
    for stale in stale_calls:
        with pytest.raises(ConflictError) as refused:
            stale()
        assert type(refused.value) is ConflictError
        assert "stale" in str(refused.value)
    assert store.langgraph.runs.get(claimed.run_id).status == "success"


def test_a_stale_attempt_cannot_finish_while_the_run_waits_for_its_retry(store: Store, clock: FakeClock) -> None:
    claimed = running(store, lease_seconds=30)
    clock.advance(31)
    store.langgraph.runs.requeue_stale()
    with pytest.raises(InvalidTransitionError):
        store.langgraph.runs.finish(claimed.run_id, attempt=1, status="success")
    assert store.langgraph.runs.get(claimed.run_id).status == "pending"


def test_the_last_allowed_attempt_ends_in_error(store: Store, clock: FakeClock) -> None:
    claimed = running(store, lease_seconds=30)
    clock.advance(31)
    store.langgraph.runs.requeue_stale(max_attempts=2)
    store.langgraph.runs.claim_next(lease_seconds=30)
    clock.advance(31)
    (ended,) = store.langgraph.runs.requeue_stale(max_attempts=2)
    assert (ended.run_id, ended.status, ended.attempt) == (claimed.run_id, "error", 2)
    assert store.langgraph.threads.get(claimed.thread_id).status == "error"


def test_a_finished_run_cannot_finish_again(store: Store) -> None:
    claimed = running(store)
    store.langgraph.runs.finish(claimed.run_id, attempt=1, status="success")
    with pytest.raises(InvalidTransitionError):
        store.langgraph.runs.finish(claimed.run_id, attempt=1, status="error")


def test_finish_refuses_a_status_a_run_cannot_end_in(store: Store) -> None:
    claimed = running(store)
    with pytest.raises(ValidationError):
        store.langgraph.runs.finish(claimed.run_id, attempt=1, status="pending")  # type: ignore[arg-type]


def test_cancel_interrupts_or_rolls_back(store: Store) -> None:
    interrupted = running(store)
    assert store.langgraph.runs.cancel(interrupted.run_id).status == "interrupted"  # type: ignore[union-attr]
    rolled = running(store)
    assert store.langgraph.runs.cancel(rolled.run_id, action="rollback") is None
    with pytest.raises(NotFoundError):
        store.langgraph.runs.get(rolled.run_id)
    with pytest.raises(InvalidTransitionError):
        store.langgraph.runs.cancel(interrupted.run_id)


def test_the_database_refuses_a_second_running_run_on_a_thread(store: Store) -> None:
    import sqlalchemy as sa

    from threadstore.langgraph.models import runs

    claimed = running(store)
    queued = store.langgraph.runs.create(claimed.thread_id, assistant_id="agent")
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as connection:
        connection.execute(
            sa.update(runs).where(runs.c.run_id == queued.run_id).values(status="running", lease_expires_at=1)
        )


# --- thread status ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "status"), [("success", "idle"), ("error", "error"), ("timeout", "error"), ("interrupted", "interrupted")]
)
def test_thread_status_follows_its_runs(store: Store, end: FinishStatus, status: str) -> None:
    thread = new_thread(store)
    assert store.langgraph.threads.get(thread).status == "idle"
    run = store.langgraph.runs.create(thread, assistant_id="agent")
    assert store.langgraph.threads.get(thread).status == "busy"
    store.langgraph.runs.claim_next()
    assert store.langgraph.threads.get(thread).status == "busy"
    store.langgraph.runs.finish(run.run_id, attempt=1, status=end)
    assert store.langgraph.threads.get(thread).status == status


def test_a_thread_whose_runs_were_rolled_back_is_idle(store: Store) -> None:
    claimed = running(store)
    store.langgraph.runs.cancel(claimed.run_id, action="rollback")
    assert store.langgraph.threads.get(claimed.thread_id).status == "idle"


def test_a_thread_stays_busy_while_an_enqueued_run_waits(store: Store) -> None:
    claimed = running(store)
    store.langgraph.runs.create(claimed.thread_id, assistant_id="agent")
    store.langgraph.runs.finish(claimed.run_id, attempt=1, status="success")
    assert store.langgraph.threads.get(claimed.thread_id).status == "busy"


# --- lists and search ------------------------------------------------------------------------


def test_runs_are_listed_newest_first_by_status_with_limit_and_offset(store: Store, clock: FakeClock) -> None:
    thread = new_thread(store)
    made = []
    for _ in range(4):
        clock.advance(1)
        made.append(store.langgraph.runs.create(thread, assistant_id="agent").run_id)
    store.langgraph.runs.cancel(made[0])
    assert [r.run_id for r in store.langgraph.runs.list(thread, limit=2, offset=1)] == [made[2], made[1]]
    assert [r.run_id for r in store.langgraph.runs.list(thread, status="interrupted")] == [made[0]]


def test_search_by_metadata_containment_status_and_ids(store: Store, clock: FakeClock) -> None:
    a = new_thread(store, user="alice", tier=1, flags={"beta": True})
    clock.advance(1)
    b = new_thread(store, user="bob", tier=1)
    store.langgraph.runs.create(b, assistant_id="agent")
    search = store.langgraph.threads.search
    assert [t.thread_id for t in search(metadata={"user": "alice"})] == [a]
    assert [t.thread_id for t in search(metadata={"tier": 1})] == [b, a]
    assert [t.thread_id for t in search(metadata={"tier": 1}, sort_order="asc")] == [a, b]
    assert [t.thread_id for t in search(metadata={"flags": {"beta": True}})] == [a]
    assert [t.thread_id for t in search(status="busy")] == [b]
    assert [t.thread_id for t in search(ids=[a])] == [a]
    assert [t.thread_id for t in search(limit=1, offset=1)] == [a]
    assert search(metadata={"user": "carol"}) == []


def test_search_binds_metadata_instead_of_splicing_it(store: Store) -> None:
    hostile = "x' OR '1'='1"
    new_thread(store, user="alice")
    assert store.langgraph.threads.search(metadata={hostile: hostile}) == []
    assert store.langgraph.threads.search(metadata={"user": hostile}) == []


STORED = {"tier": 1, "tags": ["a", "b"], "cfg": {"x": 1, "y": 2}, "on": True}


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ({"tier": 1.0}, True),
        ({"tags": ["a"]}, True),
        ({"tags": ["c"]}, False),
        ({"cfg": {"x": 1}}, True),
        ({"cfg": {"y": 2, "x": 1}}, True),
        ({"cfg": {"x": 2}}, False),
        ({"on": True}, True),
        ({"on": 1}, False),
        ({"tier": 1, "cfg": {"x": 1}}, True),
    ],
)
def test_search_matches_postgres_containment_on_every_backend(store: Store, query: dict[str, Any], found: bool) -> None:
    thread = new_thread(store, **STORED)
    assert [t.thread_id for t in store.langgraph.threads.search(metadata=query)] == ([thread] if found else [])


def test_search_pages_after_filtering_nested_metadata(store: Store, clock: FakeClock) -> None:
    matching = []
    for index in range(6):
        clock.advance(1)
        thread = new_thread(store, cfg={"even": index % 2 == 0})
        if index % 2 == 0:
            matching.append(thread)
    page = store.langgraph.threads.search(metadata={"cfg": {"even": True}}, limit=2, offset=1, sort_order="asc")
    assert [t.thread_id for t in page] == matching[1:3]


def test_a_taken_run_id_is_refused_before_the_strategy_touches_anything(store: Store) -> None:
    claimed = running(store)
    with pytest.raises(ConflictError, match="already exists"):
        store.langgraph.runs.create(
            claimed.thread_id, assistant_id="agent", multitask_strategy="rollback", run_id=claimed.run_id
        )
    assert store.langgraph.runs.get(claimed.run_id).status == "running"


def test_search_refuses_a_filter_that_is_not_an_object(store: Store) -> None:
    with pytest.raises(ValidationError):
        store.langgraph.threads.search(metadata=[])  # type: ignore[arg-type]


def test_threads_list_pages_newest_first(store: Store, clock: FakeClock) -> None:
    made = []
    for _ in range(3):
        clock.advance(1)
        made.append(new_thread(store))
    assert [t.thread_id for t in store.langgraph.threads.list(limit=2, offset=1)] == [made[1], made[0]]


def test_run_update_merges_metadata(store: Store, clock: FakeClock) -> None:
    run = store.langgraph.runs.create(new_thread(store), assistant_id="agent", metadata={"a": 1})
    clock.advance(1)
    updated = store.langgraph.runs.update(run.run_id, metadata={"b": 2})
    assert (updated.metadata, updated.updated_at) == ({"a": 1, "b": 2}, run.updated_at + 1_000_000)
