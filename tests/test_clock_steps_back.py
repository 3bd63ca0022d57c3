"""A clock that steps back (NTP may do it in production) changes neither LangGraph's order nor
which run ended last, and no OpenAI stamp is earlier than one it follows."""

from __future__ import annotations

from tests.conftest import FakeClock
from tests.factories import CALL, USAGE, assistant_id, reply_in_progress, thread_id
from threadstore import Store

BACK = -3600


def test_langgraph_claims_keep_the_order_runs_were_created_in(store: Store, clock: FakeClock) -> None:
    first_thread = store.langgraph.threads.create().thread_id
    second_thread = store.langgraph.threads.create().thread_id
    first = store.langgraph.runs.create(first_thread, assistant_id="agent")
    clock.advance(BACK)
    second = store.langgraph.runs.create(second_thread, assistant_id="agent")
    claimed = [store.langgraph.runs.claim_next(), store.langgraph.runs.claim_next()]
    assert [run.run_id for run in claimed if run is not None] == [first.run_id, second.run_id]


def test_langgraph_enqueued_runs_of_a_thread_run_in_order(store: Store, clock: FakeClock) -> None:
    thread = store.langgraph.threads.create().thread_id
    first = store.langgraph.runs.create(thread, assistant_id="agent")
    clock.advance(BACK)
    store.langgraph.runs.create(thread, assistant_id="agent")
    claimed = store.langgraph.runs.claim_next()
    assert claimed is not None and claimed.run_id == first.run_id


def test_a_langgraph_thread_follows_the_run_that_ended_last(store: Store, clock: FakeClock) -> None:
    thread = store.langgraph.threads.create().thread_id
    runs = store.langgraph.runs
    first = runs.create(thread, assistant_id="agent")
    second = runs.create(thread, assistant_id="agent")
    a = runs.claim_next()
    assert a is not None and a.run_id == first.run_id
    runs.finish(a.run_id, attempt=a.attempt, status="error")
    assert store.langgraph.threads.get(thread).status == "busy"  # the second run waits
    b = runs.claim_next()
    assert b is not None and b.run_id == second.run_id
    clock.advance(BACK)
    runs.finish(b.run_id, attempt=b.attempt, status="success")
    assert store.langgraph.threads.get(thread).status == "idle"


def test_a_langgraph_thread_whose_last_run_failed_after_the_clock_stepped_back_is_in_error(
    store: Store, clock: FakeClock
) -> None:
    thread = store.langgraph.threads.create().thread_id
    runs = store.langgraph.runs
    runs.create(thread, assistant_id="agent")
    runs.create(thread, assistant_id="agent")
    a = runs.claim_next()
    assert a is not None
    runs.finish(a.run_id, attempt=a.attempt, status="success")
    b = runs.claim_next()
    assert b is not None
    clock.advance(BACK)
    runs.finish(b.run_id, attempt=b.attempt, status="error")
    assert store.langgraph.threads.get(thread).status == "error"


def test_openai_run_stamps_never_precede_the_ones_they_follow(store: Store, clock: FakeClock) -> None:
    run = store.runs.create(thread_id(store), assistant_id=assistant_id(store))
    clock.advance(BACK)
    started = store.runs.start(run.id)
    assert started.started_at == run.created_at
    clock.advance(-BACK + 60)
    store.runs.require_action(run.id, tool_calls=[CALL])
    store.runs.submit_tool_outputs(run.id, tool_outputs=[{"tool_call_id": "call_1", "output": "ok"}])
    restarted = store.runs.start(run.id)
    clock.advance(BACK)
    completed = store.runs.complete(run.id, usage=USAGE)
    assert restarted.started_at == started.started_at
    assert completed.completed_at is not None and started.started_at is not None
    assert completed.completed_at >= started.started_at >= completed.created_at


def test_every_openai_end_stamp_is_at_least_the_start(store: Store, clock: FakeClock) -> None:
    for end in ("fail", "cancel"):
        run = store.runs.create(thread_id(store), assistant_id=assistant_id(store))
        clock.advance(60)
        store.runs.start(run.id)
        clock.advance(BACK)
        if end == "fail":
            ended = store.runs.fail(run.id, code="server_error", message="down")
            stamp = ended.failed_at
        else:
            store.runs.cancel(run.id)
            ended = store.runs.mark_cancelled(run.id)
            stamp = ended.cancelled_at
        assert ended.started_at is not None and stamp is not None and stamp >= ended.started_at, end
        clock.advance(-BACK)


def test_openai_step_and_message_stamps_never_precede_their_creation(store: Store, clock: FakeClock) -> None:
    run = store.runs.create(thread_id(store), assistant_id=assistant_id(store))
    store.runs.start(run.id)
    message, step = reply_in_progress(store, run)
    other = store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    clock.advance(BACK)
    completed_step = store.run_steps.complete(step.id)
    completed_message = store.messages.complete(message.id)
    ended = store.runs.fail(run.id, code="server_error", message="down")  # the cascade fails the other step
    failed_step = store.run_steps.get(other.id)
    assert completed_step.completed_at == step.created_at
    assert completed_message.completed_at == message.created_at
    assert failed_step.failed_at == other.created_at
    assert ended.failed_at == run.created_at
