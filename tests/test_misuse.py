"""Misuse is refused at once, with an error that says what to do instead: a store call inside that
store's own transaction (which would wait for itself), a transaction used after its block, a naive
clock, and a lifecycle verb on an object in the wrong status (the error names the verb and the
statuses it needs)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
import sqlalchemy as sa

from tests.conftest import FakeClock, snapshot
from threadstore import AsyncStore, InvalidTransitionError, Store, UsageError, ValidationError

# Store from the test's own thread; AsyncStore's tasks: see the asyncio test below (the sync
# facade over AsyncStore runs each call in a task of its own, so it holds no transaction open).
SYNC_ONLY = pytest.mark.parametrize("store_kind", ["sync"])


@SYNC_ONLY
def test_a_store_call_inside_its_own_transaction_is_refused_at_once_naming_the_fix(store: Store) -> None:
    thread = store.threads.create().id
    started = time.monotonic()
    with store.transaction() as tx:
        tx.threads.update(thread, metadata={"a": "1"})
        with pytest.raises(UsageError, match=r"tx\.threads"):
            store.threads.update(thread, metadata={"b": "2"})
        with pytest.raises(UsageError):
            store.threads.get(thread)
    assert time.monotonic() - started < 5  # refused, not waited for (SQLite's busy timeout is 30 s)
    assert store.threads.get(thread).metadata == {"a": "1"}


@SYNC_ONLY
def test_a_nested_transaction_of_the_same_store_is_refused(store: Store) -> None:
    thread = store.threads.create().id
    with store.transaction() as tx:
        tx.threads.update(thread, metadata={"a": "1"})
        with pytest.raises(UsageError), store.transaction():
            pass
    assert store.threads.get(thread).metadata == {"a": "1"}  # the outer transaction still committed


def test_a_transaction_used_after_its_block_is_refused(store: Store) -> None:
    thread = store.threads.create().id
    with store.transaction() as tx:
        pass
    before = snapshot(store)
    with pytest.raises(UsageError, match="ended"):
        tx.threads.get(thread)
    with pytest.raises(UsageError):
        tx.messages.create(thread, role="user", content="late")
    assert snapshot(store) == before


def test_another_thread_may_use_the_store_while_a_transaction_is_open(store: Store) -> None:
    thread = store.threads.create().id
    with store.transaction() as tx:
        tx.threads.get(thread)
    store.threads.update(thread, metadata={"after": "yes"})  # the block is over: the store is free again
    assert store.threads.get(thread).metadata == {"after": "yes"}


def test_a_task_calling_the_async_store_inside_its_own_transaction_is_refused(store_url: sa.URL) -> None:
    async def scenario() -> None:
        async with AsyncStore(store_url) as store:
            thread = (await store.threads.create()).id
            async with store.transaction() as tx:
                await tx.threads.update(thread, metadata={"a": "1"})
                with pytest.raises(UsageError, match=r"tx\.threads"):
                    await store.threads.get(thread)
                with pytest.raises(UsageError):
                    async with store.transaction():
                        pass
                # a task created inside the block is another task: not refused
                other = asyncio.ensure_future(store.threads.get(thread))
            assert (await other).id == thread
            with pytest.raises(UsageError):
                await tx.threads.get(thread)

    asyncio.run(scenario())


def test_a_naive_clock_value_is_a_validation_error(store_url: sa.URL) -> None:
    naive = datetime(2026, 1, 1)
    with Store(store_url, clock=lambda: naive) as store:
        before = snapshot(store)
        with pytest.raises(ValidationError, match="timezone-aware"):
            store.threads.create()
        with pytest.raises(ValidationError):
            store.langgraph.threads.create()
        assert snapshot(store) == before


def test_a_lifecycle_error_names_the_verb_and_the_status_it_needs(store: Store) -> None:
    assistant = store.assistants.create(model="gpt-4o").id
    run = store.runs.create(store.threads.create().id, assistant_id=assistant)

    with pytest.raises(InvalidTransitionError) as refused:
        store.runs.submit_tool_outputs(run.id, tool_outputs=[])
    assert str(refused.value) == f"submit_tool_outputs needs run {run.id} in requires_action; it is queued."
    assert (refused.value.kind, refused.value.object_id, refused.value.status) == ("run", run.id, "queued")
    assert (refused.value.target, refused.value.verb, refused.value.sources) == (
        "queued",
        "submit_tool_outputs",
        ("requires_action",),
    )

    store.runs.start(run.id)
    with pytest.raises(InvalidTransitionError, match=rf"^start needs run {run.id} in queued; it is in_progress\.$"):
        store.runs.start(run.id)


def test_a_langgraph_lifecycle_error_names_the_verb(store: Store, clock: FakeClock) -> None:
    thread = store.langgraph.threads.create().thread_id
    store.langgraph.runs.create(thread, assistant_id="agent")
    claimed = store.langgraph.runs.claim_next(lease_seconds=60)
    assert claimed is not None
    store.langgraph.runs.finish(claimed.run_id, attempt=claimed.attempt, status="success")
    with pytest.raises(InvalidTransitionError, match=r"^heartbeat needs langgraph run .* in running; it is success\.$"):
        store.langgraph.runs.heartbeat(claimed.run_id, attempt=claimed.attempt)
    with pytest.raises(InvalidTransitionError, match=r"^finish needs langgraph run .* in running; it is success\.$"):
        store.langgraph.runs.finish(claimed.run_id, attempt=claimed.attempt, status="error")
