"""LangGraph runs in the event stream: the worker's stream-mode events, fenced by its attempt,
between the `metadata` the store writes when the run starts and the `end` it writes when the run
ends. Runs against both stores on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import FakeClock
from threadstore import ConflictError, InvalidTransitionError, NotFoundError, Store, ValidationError


def claimed(store: Store) -> tuple[str, str]:
    """A LangGraph run, claimed: its thread and id."""
    thread = store.langgraph.threads.create().thread_id
    run = store.langgraph.runs.create(thread, assistant_id="agent").run_id
    taken = store.langgraph.runs.claim_next()
    assert taken is not None and taken.run_id == run
    return thread, run


def test_a_runs_stream_is_metadata_then_the_workers_events_then_end(store: Store) -> None:
    thread, run = claimed(store)
    store.langgraph.runs.append_event(run, attempt=1, event="values", data={"messages": []})
    store.langgraph.runs.append_event(run, attempt=1, event="updates", data={"agent": {"n": 1}})
    store.langgraph.runs.finish(run, attempt=1, status="success")
    events = store.events.list(run_id=run)
    assert [(e.event, e.data) for e in events] == [
        ("metadata", {"run_id": run, "attempt": 1}),
        ("values", {"messages": []}),
        ("updates", {"agent": {"n": 1}}),
        ("end", {"run_id": run, "status": "success"}),
    ]
    assert {e.thread_id for e in events} == {thread}


def test_a_runs_events_are_read_apart_from_its_threads_other_runs(store: Store) -> None:
    thread, first = claimed(store)
    store.langgraph.runs.finish(first, attempt=1, status="success")
    second = store.langgraph.runs.create(thread, assistant_id="agent").run_id
    taken = store.langgraph.runs.claim_next()
    assert taken is not None and taken.run_id == second
    store.langgraph.runs.append_event(second, attempt=1, event="values", data={"n": 2})
    assert [e.event for e in store.events.list(run_id=first)] == ["metadata", "end"]
    assert [e.event for e in store.events.list(run_id=second)] == ["metadata", "values"]
    store.langgraph.runs.delete(first)
    assert store.events.list(run_id=first) == []
    assert [e.event for e in store.events.list(thread_id=thread)] == ["metadata", "values"]


def test_following_a_langgraph_run_ends_with_its_end(store: Store) -> None:
    _, run = claimed(store)
    store.langgraph.runs.append_event(run, attempt=1, event="custom", data={"progress": 0.5})
    store.langgraph.runs.cancel(run, action="interrupt")
    followed = list(store.events.follow(run_id=run))
    assert [e.event for e in followed] == ["metadata", "custom", "end"]
    assert followed[-1].data["status"] == "interrupted"


def test_a_stale_worker_cannot_append_to_its_successors_stream(store: Store, clock: FakeClock) -> None:
    _, run = claimed(store)
    clock.advance(3600)
    store.langgraph.runs.requeue_stale()
    again = store.langgraph.runs.claim_next()
    assert again is not None and again.attempt == 2
    with pytest.raises(ConflictError):
        store.langgraph.runs.append_event(run, attempt=1, event="values", data={"late": True})
    assert [(e.event, e.data) for e in store.events.list(run_id=run)] == [
        ("metadata", {"run_id": run, "attempt": 1}),
        ("metadata", {"run_id": run, "attempt": 2}),
    ]


def test_a_run_that_has_ended_takes_no_more_events(store: Store) -> None:
    _, run = claimed(store)
    store.langgraph.runs.finish(run, attempt=1, status="error")
    before = store.events.list(run_id=run)
    with pytest.raises(InvalidTransitionError):
        store.langgraph.runs.append_event(run, attempt=1, event="values", data={})
    with pytest.raises(NotFoundError):
        store.langgraph.runs.append_event("00000000-0000-0000-0000-000000000000", attempt=1, event="values", data={})
    assert store.events.list(run_id=run) == before


@pytest.mark.parametrize(
    ("event", "data"),
    [("metadata", {}), ("end", {}), ("", {}), ("x" * 65, {}), (5, {}), ("values", {1, 2}), ("values", float("nan"))],
)
def test_a_bad_or_reserved_event_is_refused_and_nothing_is_written(store: Store, event: Any, data: Any) -> None:
    _, run = claimed(store)
    before = store.events.list(run_id=run)
    with pytest.raises(ValidationError):
        store.langgraph.runs.append_event(run, attempt=1, event=event, data=data)
    assert store.events.list(run_id=run) == before


def test_a_run_rolled_back_by_cancel_takes_its_events_with_it(store: Store) -> None:
    _, run = claimed(store)
    store.langgraph.runs.append_event(run, attempt=1, event="values", data={})
    store.langgraph.runs.cancel(run, action="rollback")
    assert store.events.list(run_id=run) == []


def test_runs_rolled_back_by_a_new_runs_strategy_take_their_events_with_them(store: Store) -> None:
    thread, run = claimed(store)
    store.langgraph.runs.create(thread, assistant_id="agent", multitask_strategy="rollback")
    assert store.events.list(run_id=run) == []
    assert store.events.list(thread_id=thread) == []  # the new run is pending: nothing streamed yet
