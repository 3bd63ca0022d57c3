"""AsyncStore as async code uses it: the same repositories as Store, concurrent tasks on one
store, cancellation, and an event loop that keeps running during a burst of calls. (Every
behaviour test of the suite also runs against AsyncStore, through tests/blocking.py.)"""

from __future__ import annotations

import asyncio
import inspect
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import FakeClock
from threadstore import AsyncStore, Store
from threadstore.async_store import AsyncRepositories
from threadstore.db import create_engine
from threadstore.store import Repositories


def public_methods(obj: object) -> set[str]:
    return {name for name, value in inspect.getmembers(type(obj)) if callable(value) and not name.startswith("_")}


def repository_pairs(sync: Repositories, awaited: AsyncRepositories) -> dict[str, tuple[object, object]]:
    return {
        "assistants": (sync.assistants, awaited.assistants),
        "threads": (sync.threads, awaited.threads),
        "messages": (sync.messages, awaited.messages),
        "runs": (sync.runs, awaited.runs),
        "run_steps": (sync.run_steps, awaited.run_steps),
        "langgraph.threads": (sync.langgraph.threads, awaited.langgraph.threads),
        "langgraph.runs": (sync.langgraph.runs, awaited.langgraph.runs),
        "conversations": (sync.conversations, awaited.conversations),
        "conversations.items": (sync.conversations.items, awaited.conversations.items),
        "responses": (sync.responses, awaited.responses),
        "responses.input_items": (sync.responses.input_items, awaited.responses.input_items),
        "events": (sync.events, awaited.events),
    }


def run(store_url: sa.URL, clock: FakeClock, body: Callable[[AsyncStore], Awaitable[Any]]) -> Any:
    """Run `body` with an AsyncStore on `store_url`, in an event loop of its own."""

    async def main() -> Any:
        async with AsyncStore(store_url, clock=clock) as store:
            return await body(store)

    return asyncio.run(main())


def test_every_method_of_every_repository_has_its_awaitable_twin(store_url: sa.URL, clock: FakeClock) -> None:
    async def body(store: AsyncStore) -> dict[str, tuple[set[str], set[str]]]:
        sync = Store._on_engine(store.url, create_engine(store.url), clock)
        pairs = repository_pairs(sync, store)
        sync.close()
        return {name: (public_methods(s), public_methods(a)) for name, (s, a) in pairs.items()}

    for name, (sync_methods, async_methods) in run(store_url, clock, body).items():
        assert sync_methods == async_methods, name


def test_each_twin_is_a_coroutine_with_the_sync_methods_docstring(store_url: sa.URL, clock: FakeClock) -> None:
    async def body(store: AsyncStore) -> list[str]:
        return [
            name
            for repository in (store.messages, store.langgraph.runs)
            for name in public_methods(repository)
            if not inspect.iscoroutinefunction(getattr(repository, name))
            or "Raises:" not in (getattr(repository, name).__doc__ or "")
        ]

    assert run(store_url, clock, body) == []


def test_each_twin_shows_the_parameters_of_its_sync_method(store_url: sa.URL, clock: FakeClock) -> None:
    async def body(store: AsyncStore) -> list[str]:
        sync = Store._on_engine(store.url, create_engine(store.url), clock)
        differ = [
            f"{name}.{method}"
            for name, (s, a) in repository_pairs(sync, store).items()
            for method in public_methods(s)
            if inspect.signature(getattr(s, method)).parameters != inspect.signature(getattr(a, method)).parameters
        ]
        sync.close()
        return differ

    assert run(store_url, clock, body) == []


def test_a_hundred_concurrent_tasks_on_one_store_each_get_their_own_work_done(
    store_url: sa.URL, clock: FakeClock
) -> None:
    async def one_task(store: AsyncStore, assistant: str, index: int) -> tuple[str, str, int]:
        thread = await store.threads.create(metadata={"task": str(index)})
        await store.messages.create(thread.id, role="user", content=f"hello {index}")
        created = await store.runs.create(thread.id, assistant_id=assistant)
        await store.runs.start(created.id)
        done = await store.runs.complete(created.id)
        page = await store.messages.list(thread.id)
        return thread.metadata["task"], done.status, len(page.data)

    async def body(store: AsyncStore) -> list[tuple[str, str, int]]:
        assistant = (await store.assistants.create(model="gpt-4o")).id
        return await asyncio.gather(*(one_task(store, assistant, i) for i in range(100)))

    assert run(store_url, clock, body) == [(str(i), "completed", 1) for i in range(100)]


def test_concurrent_claims_take_each_queued_run_once(store_url: sa.URL, clock: FakeClock) -> None:
    async def body(store: AsyncStore) -> tuple[list[str], list[str]]:
        assistant = (await store.assistants.create(model="gpt-4o")).id
        queued = [
            (await store.runs.create((await store.threads.create()).id, assistant_id=assistant)).id for _ in range(30)
        ]
        claimed = await asyncio.gather(*(store.runs.claim_next() for _ in range(40)))
        return queued, [r.id for r in claimed if r is not None]

    queued, claimed = run(store_url, clock, body)
    assert sorted(claimed) == sorted(queued)


def test_the_event_loop_keeps_running_during_a_burst_of_calls(store_url: sa.URL, clock: FakeClock) -> None:
    async def body(store: AsyncStore) -> int:
        thread = (await store.threads.create()).id
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.create_task(ticker())
        for i in range(50):
            await store.messages.create(thread, role="user", content=f"m{i}")
        done.set()
        await ticking
        return ticks

    # A call that blocked the loop would leave the ticker no turn until the burst was over.
    assert run(store_url, clock, body) >= 50


def test_a_transaction_cancelled_inside_its_block_rolls_back_and_the_store_stays_usable(
    store_url: sa.URL, clock: FakeClock
) -> None:
    async def body(store: AsyncStore) -> list[str]:
        entered = asyncio.Event()

        async def doomed() -> None:
            async with store.transaction() as tx:
                await tx.threads.create(metadata={"doomed": "yes"})
                entered.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(doomed())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.threads.create(metadata={"after": "yes"})
        return [dict(t.metadata).popitem()[0] for t in (await store.threads.list()).data]

    assert run(store_url, clock, body) == ["after"]


def test_a_call_cancelled_while_it_waits_for_a_lock_writes_all_or_nothing(
    store_url: sa.URL, clock: FakeClock, backend: str
) -> None:
    holder = create_engine(store_url)

    async def body(store: AsyncStore) -> tuple[str, str, int]:
        thread = await store.threads.create(metadata={"n": "0"})
        connection = holder.raw_connection()
        try:
            if backend == "sqlite":
                connection.cursor().execute("BEGIN IMMEDIATE")  # SQLite's one write lock
            else:
                connection.cursor().execute("SELECT id FROM threadstore_threads WHERE id = %s FOR UPDATE", (thread.id,))
            task = asyncio.create_task(store.threads.update(thread.id, metadata={"n": "1"}))
            await asyncio.sleep(0.3)  # the update now waits for the lock
            task.cancel()
        finally:
            connection.rollback()
            connection.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        # On PostgreSQL the statement is cancelled and its unit rolled back; on SQLite the call,
        # already in its thread, goes on to its end once the lock is free. Nothing is half done.
        expected = "0" if backend == "postgres" else "1"
        for _ in range(100):
            seen = (await store.threads.get(thread.id)).metadata["n"]
            if seen == expected:
                break
            await asyncio.sleep(0.1)
        again = await store.threads.update(thread.id, metadata={"n": "2"})
        engine = store._async_engine
        checked_out = 0 if engine is None else engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]
        return seen, again.metadata["n"], checked_out

    try:
        assert run(store_url, clock, body) == ("0" if backend == "postgres" else "1", "2", 0)
    finally:
        holder.dispose()


def run_on_one_connection(store_url: sa.URL, clock: FakeClock, body: Callable[[AsyncStore], Awaitable[Any]]) -> Any:
    """Run `body` with a PostgreSQL AsyncStore whose pool holds a single connection."""

    async def main() -> Any:
        options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 5}
        async with AsyncStore(store_url, clock=clock, engine_options=options) as store:
            return await body(store)

    return asyncio.run(main())


def test_a_call_waiting_for_a_connection_gets_it_before_a_call_that_came_later(
    store_url: sa.URL, clock: FakeClock, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite calls do not wait for a pooled connection")

    async def body(store: AsyncStore) -> list[str]:
        thread = await store.threads.create()
        done: list[str] = []

        async def earlier() -> None:
            await store.threads.get(thread.id)
            done.append("earlier")

        async with store.transaction() as tx:  # holds the one connection
            await tx.threads.get(thread.id)
            waiting = asyncio.create_task(earlier())
            for _ in range(10):
                await asyncio.sleep(0)  # `earlier` now waits for the connection
        # The connection is back; the later call asks for it before `earlier` has run again.
        await store.threads.get(thread.id)
        done.append("later")
        await waiting
        return done

    assert run_on_one_connection(store_url, clock, body) == ["earlier", "later"]


def test_a_call_cancelled_as_a_connection_is_handed_to_it_passes_the_connection_on(
    store_url: sa.URL, clock: FakeClock, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite calls do not wait for a pooled connection")

    async def body(store: AsyncStore) -> tuple[bool, str, int]:
        thread = await store.threads.create()
        async with store.transaction() as tx:
            await tx.threads.get(thread.id)
            waiting = asyncio.create_task(store.threads.get(thread.id))
            for _ in range(10):
                await asyncio.sleep(0)
        waiting.cancel()  # the connection has just been handed to it; it has not run since
        with pytest.raises(asyncio.CancelledError):
            await waiting
        found = await store.threads.get(thread.id)  # the one connection is still the pool's
        engine = store._async_engine
        assert engine is not None
        return waiting.cancelled(), found.id, engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]

    created = run_on_one_connection(store_url, clock, body)
    assert created[0] is True and created[1].startswith("thread_") and created[2] == 0


def test_a_call_of_the_store_waiting_for_a_transactions_lock_does_not_hold_the_transaction_up(
    store_url: sa.URL, clock: FakeClock
) -> None:
    async def body(store: AsyncStore) -> tuple[str, str]:
        thread = await store.threads.create(metadata={"n": "0"})
        async with store.transaction() as tx:
            await tx.threads.update(thread.id, metadata={"n": "1"})  # SQLite's write lock, a PostgreSQL row lock
            waiting = asyncio.create_task(store.threads.update(thread.id, metadata={"n": "2"}))
            await asyncio.sleep(0.2)  # the store's call now waits for the transaction's lock
            seen = (await asyncio.wait_for(tx.threads.get(thread.id), 10)).metadata["n"]
        await waiting
        return seen, (await store.threads.get(thread.id)).metadata["n"]

    assert run(store_url, clock, body) == ("1", "2")


def test_a_transaction_cancelled_while_it_waits_to_begin_leaves_no_lock_behind(
    store_url: sa.URL, clock: FakeClock, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("a PostgreSQL transaction takes no lock as it begins")
    holder = create_engine(store_url)

    async def body(store: AsyncStore) -> list[str]:
        connection = holder.raw_connection()
        try:
            connection.cursor().execute("BEGIN IMMEDIATE")  # SQLite's one write lock

            async def begin() -> None:
                async with store.transaction() as tx:
                    await tx.threads.create(metadata={"doomed": "yes"})

            task = asyncio.create_task(begin())
            await asyncio.sleep(0.3)  # the transaction's BEGIN IMMEDIATE now waits for the lock
            task.cancel()
        finally:
            connection.rollback()
            connection.close()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The BEGIN, already in its worker, takes the lock once it is free; the unit's end lets it go.
        await asyncio.wait_for(store.threads.create(metadata={"after": "yes"}), 10)
        return [dict(t.metadata).popitem()[0] for t in (await store.threads.list()).data]

    try:
        assert run(store_url, clock, body) == ["after"]
    finally:
        holder.dispose()


def test_a_transaction_cancelled_again_while_it_rolls_back_still_rolls_back(
    store_url: sa.URL, clock: FakeClock
) -> None:
    async def body(store: AsyncStore) -> list[str]:
        entered = asyncio.Event()
        busy: list[asyncio.Future[None]] = []

        async def doomed() -> None:
            async with store.transaction() as tx:
                await tx.threads.create(metadata={"doomed": "yes"})
                # Keeps the transaction's worker busy (SQLite), so that its rollback waits its turn.
                busy.append(asyncio.ensure_future(tx.threads._run(time.sleep, 0.3)))
                entered.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(doomed())
        await entered.wait()
        task.cancel()
        await asyncio.sleep(0.05)  # the task now waits for its rollback
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await busy[0]
        await asyncio.wait_for(store.threads.create(metadata={"after": "yes"}), 10)
        return [dict(t.metadata).popitem()[0] for t in (await store.threads.list()).data]

    assert run(store_url, clock, body) == ["after"]


def _get_thread_in_a_loop_of_its_own(store: AsyncStore, thread_id: str) -> None:
    found = asyncio.run(store.threads.get(thread_id))
    os._exit(0 if found.id == thread_id else 1)


def test_a_sqlite_async_store_used_before_a_fork_serves_the_forked_child(tmp_path: Path, clock: FakeClock) -> None:
    store = AsyncStore(f"sqlite:///{tmp_path / 'fork.db'}", clock=clock)
    thread_id = asyncio.run(store.threads.create()).id  # the parent's worker thread has started
    child = multiprocessing.get_context("fork").Process(
        target=_get_thread_in_a_loop_of_its_own, args=(store, thread_id)
    )
    child.start()
    child.join(30)
    if child.exitcode is None:  # waiting for a worker thread that the fork did not copy
        child.kill()
        child.join()
    asyncio.run(store.close())
    assert child.exitcode == 0
