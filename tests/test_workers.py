"""Many worker processes on one store, on every backend: claim races, cancel against complete,
one active run per thread, read-modify-write contention, and a stale worker."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import FakeClock
from threadstore import ConflictError, Store, ThreadStoreError
from threadstore.langgraph.models import runs as langgraph_runs
from threadstore.store import Transaction
from threadstore.types import MultitaskStrategy

WORKERS = 8


def _worker(target: Callable[..., Any], url: str, now: datetime | None, args: tuple[Any, ...], results: Any) -> None:
    try:
        with Store(url, migrate_on_open=False, clock=None if now is None else (lambda: now)) as store:
            results.put(("ok", target(store, *args)))
    except BaseException as error:  # reported to the parent, which fails the test
        results.put(("error", repr(error)))


def stalled_after_its_claim(target: Callable[..., Any], url: sa.URL, clock: FakeClock) -> tuple[Any, Any, Any]:
    """Start `target(store, 0, claimed, resume)` in a forked process and return, once it has set
    `claimed`, the process, its results queue and the `resume` event it waits for."""
    context = multiprocessing.get_context("fork")
    results, claimed, resume = context.Queue(), context.Event(), context.Event()
    text = url.render_as_string(hide_password=False)
    process = context.Process(target=_worker, args=(target, text, clock.now, (0, claimed, resume), results))
    process.start()
    assert claimed.wait(timeout=60)
    return process, results, resume


def in_processes(count: int, target: Callable[..., Any], url: sa.URL, clock: FakeClock, *args: Any) -> list[Any]:
    """Run `target(store, index, *args)` in `count` forked processes, each with a store whose
    clock reads the test clock's time; return their results."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    text = url.render_as_string(hide_password=False)
    processes = [
        context.Process(target=_worker, args=(target, text, clock.now, (i, *args), results)) for i in range(count)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    failures = [detail for kind, detail in outcomes if kind == "error"]
    assert not failures, failures
    return [detail for _, detail in outcomes]


def queued_runs(store: Store, count: int) -> list[str]:
    assistant = store.assistants.create(model="gpt-4o").id
    with store.transaction() as tx:
        return [tx.runs.create(tx.threads.create().id, assistant_id=assistant).id for _ in range(count)]


# --- claim races ---------------------------------------------------------------------------------


def _claim_until_empty(store: Store, _index: int) -> list[str]:
    claimed = []
    while (run := store.runs.claim_next()) is not None:
        claimed.append(run.id)
    return claimed


def test_eight_workers_claim_two_thousand_runs_each_exactly_once(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    made = queued_runs(store, 2000)
    claimed = [run_id for batch in in_processes(WORKERS, _claim_until_empty, store_url, clock) for run_id in batch]
    assert len(claimed) == len(set(claimed)) == 2000
    assert set(claimed) == set(made)
    with store.engine.connect() as connection:
        statuses = connection.exec_driver_sql("SELECT status, count(*) FROM threadstore_runs GROUP BY status").all()
    assert dict(statuses) == {"in_progress": 2000}


def _claim_and_finish_langgraph(store: Store, _index: int) -> list[str]:
    done: list[str] = []
    while True:
        run = store.langgraph.runs.claim_next(lease_seconds=300)
        if run is None:
            if not _pending(store):
                return done
            time.sleep(0.005)  # the pending runs wait for their threads' running runs
            continue
        store.langgraph.runs.finish(run.run_id, attempt=run.attempt, status="success")
        done.append(run.run_id)


def _pending(store: Store) -> int:
    with store.engine.connect() as connection:
        query = sa.select(sa.func.count()).where(langgraph_runs.c.status == "pending")
        return int(connection.execute(query).scalar_one())


def test_eight_workers_claim_two_thousand_langgraph_runs_each_exactly_once(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    made = []
    with store.transaction() as tx:
        for _ in range(200):
            thread = tx.langgraph.threads.create().thread_id
            made += [tx.langgraph.runs.create(thread, assistant_id="agent").run_id for _ in range(10)]
    finished = [
        run_id for batch in in_processes(WORKERS, _claim_and_finish_langgraph, store_url, clock) for run_id in batch
    ]
    assert len(finished) == len(set(finished)) == 2000
    assert set(finished) == set(made)
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(langgraph_runs.c.status, langgraph_runs.c.attempt)).all()
    assert Counter(rows) == {("success", 1): 2000}


# --- cancel against complete ---------------------------------------------------------------------


def _cancel_all(store: Store, _index: int, run_ids: list[str]) -> dict[str, str]:
    outcome = {}
    for run_id in run_ids:
        try:
            store.runs.cancel(run_id)
            store.runs.mark_cancelled(run_id)
            outcome[run_id] = "won"
        except ConflictError:
            outcome[run_id] = "lost"
    return outcome


def _complete_all(store: Store, _index: int, run_ids: list[str]) -> dict[str, str]:
    outcome = {}
    for run_id in reversed(run_ids):
        try:
            store.runs.complete(run_id)
            outcome[run_id] = "won"
        except ConflictError:
            outcome[run_id] = "lost"
    return outcome


def _race(store: Store, index: int, run_ids: list[str]) -> tuple[str, dict[str, str]]:
    side = ("cancel", _cancel_all) if index == 0 else ("complete", _complete_all)
    return side[0], side[1](store, index, run_ids)


def test_cancel_racing_complete_ends_each_run_once_and_the_loser_gets_conflict(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    run_ids = queued_runs(store, 300)
    for run_id in run_ids:
        store.runs.start(run_id)
    outcomes = dict(in_processes(2, _race, store_url, clock, run_ids))
    for run_id in run_ids:
        run = store.runs.get(run_id)
        stamps = [run.cancelled_at, run.completed_at, run.failed_at]
        assert sum(stamp is not None for stamp in stamps) == 1
        winner = "cancel" if run.status == "cancelled" else "complete"
        assert run.status in ("cancelled", "completed")
        assert outcomes[winner][run_id] == "won"
        assert outcomes["complete" if winner == "cancel" else "cancel"][run_id] == "lost"


# --- one active run per thread -------------------------------------------------------------------


def _open_runs(store: Store, _index: int, thread_ids: list[str], assistant_id: str) -> list[str]:
    opened = []
    for thread_id in thread_ids:
        with contextlib.suppress(ConflictError):
            opened.append(store.runs.create(thread_id, assistant_id=assistant_id).thread_id)
    return opened


def test_eight_workers_opening_runs_on_a_hundred_threads_open_one_each(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    assistant = store.assistants.create(model="gpt-4o").id
    threads = [store.threads.create().id for _ in range(100)]
    opened = [
        thread for batch in in_processes(WORKERS, _open_runs, store_url, clock, threads, assistant) for thread in batch
    ]
    assert sorted(opened) == sorted(threads)


def _open_langgraph_runs(store: Store, _index: int, thread_ids: list[str], strategy: MultitaskStrategy) -> int:
    opened = 0
    for thread_id in thread_ids:
        try:
            store.langgraph.runs.create(thread_id, assistant_id="agent", multitask_strategy=strategy)
            opened += 1
        except ConflictError:
            pass
    return opened


# What each thread holds after 8 workers each created one run on it with the strategy.
EXPECTED_RUNS = {
    "reject": {"pending": 1},
    "enqueue": {"pending": WORKERS},
    "interrupt": {"pending": 1, "interrupted": WORKERS - 1},
    "rollback": {"pending": 1},
}


@pytest.mark.parametrize("strategy", sorted(EXPECTED_RUNS))
def test_eight_workers_creating_langgraph_runs_follow_the_strategy(
    store: Store, store_url: sa.URL, clock: FakeClock, strategy: str
) -> None:
    threads = [store.langgraph.threads.create().thread_id for _ in range(100)]
    opened = sum(in_processes(WORKERS, _open_langgraph_runs, store_url, clock, threads, strategy))
    assert opened == (100 if strategy == "reject" else 100 * WORKERS)
    for thread in threads:
        held = Counter(run.status for run in store.langgraph.runs.list(thread, limit=100))
        assert held == EXPECTED_RUNS[strategy]
        assert store.langgraph.threads.get(thread).status == "busy"


# --- read-modify-write contention ----------------------------------------------------------------


def _increment(store: Store, _index: int, thread_id: str, immediate: bool) -> tuple[int, int]:
    """300 read-modify-write increments of a counter; returns (locked errors, other refusals)."""
    locked = refused = 0
    for _ in range(300):
        try:
            if immediate:
                with store.transaction() as tx:
                    _bump(tx, thread_id, lock=True)
            else:  # the control: a deferred transaction that reads, then writes, without a lock
                with store._engine_scope.read() as raw:  # a plain BEGIN, not BEGIN IMMEDIATE
                    _bump(Transaction(raw, store.clock), thread_id, lock=False)
        except ThreadStoreError as error:
            locked += "locked" in str(error)
            refused += "locked" not in str(error)
    return locked, refused


def _bump(tx: Transaction, thread_id: str, *, lock: bool) -> None:
    count = int(tx.threads.get(thread_id, for_update=lock).metadata["n"])
    tx.threads.update(thread_id, metadata={"n": str(count + 1)})


def test_contended_read_modify_write_loses_nothing_and_never_sees_locked(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    thread = store.threads.create(metadata={"n": "0"}).id
    errors = in_processes(WORKERS, _increment, store_url, clock, thread, True)
    assert errors == [(0, 0)] * WORKERS
    assert store.threads.get(thread).metadata["n"] == str(WORKERS * 300)


def test_the_contention_test_fails_for_a_deferred_unlocked_transaction(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    thread = store.threads.create(metadata={"n": "0"}).id
    errors = in_processes(WORKERS, _increment, store_url, clock, thread, False)
    failed = sum(locked + refused for locked, refused in errors)
    lost = WORKERS * 300 - failed - int(store.threads.get(thread).metadata["n"])
    assert failed > 0 or lost > 0


# --- a stale worker ----------------------------------------------------------------------------


def _stalled_worker(store: Store, _index: int, claimed: Any, resume: Any) -> str:
    run = store.langgraph.runs.claim_next(lease_seconds=1)
    assert run is not None
    claimed.set()
    assert resume.wait(timeout=60)  # stalls; meanwhile its lease runs out and the run is redone
    try:
        store.langgraph.runs.finish(run.run_id, attempt=run.attempt, status="error")
    except ConflictError as refused:
        return type(refused).__name__
    return "overwrote"


def test_a_stale_worker_in_another_process_cannot_overwrite_its_successor(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    # Time moves only when the test moves it, and the worker waits for a signal, not a sleep: the
    # test does not depend on how fast the machine is.
    thread = store.langgraph.threads.create().thread_id
    run = store.langgraph.runs.create(thread, assistant_id="agent")
    stale, results, resume = stalled_after_its_claim(_stalled_worker, store_url, clock)
    clock.advance(2)  # past the worker's one-second lease
    assert [r.run_id for r in store.langgraph.runs.requeue_stale()] == [run.run_id]
    successor = store.langgraph.runs.claim_next()
    assert successor is not None and successor.attempt == 2
    store.langgraph.runs.finish(run.run_id, attempt=2, status="success")
    resume.set()
    assert results.get(timeout=60) == ("ok", "ConflictError")
    stale.join(timeout=30)
    assert store.langgraph.runs.get(run.run_id).status == "success"


# --- fork ------------------------------------------------------------------------------------------


def _session(store: Store) -> object:
    """Who the database thinks the store's units of work are: the server process on PostgreSQL,
    the file on SQLite."""
    with store._engine_scope.read() as raw:
        cursor = raw.cursor()
        if raw.dialect.name == "postgresql":
            cursor.execute("SELECT pg_backend_pid()")
            return cursor.fetchone()[0]
        cursor.execute("PRAGMA database_list")
        return cursor.fetchall()[0][2]


@pytest.mark.parametrize("store_kind", ["sync"])  # an AsyncStore lives in its event loop's process
def test_a_store_used_after_fork_gets_its_own_connections(store: Store) -> None:
    parent_session = _session(store)
    child = os.fork()
    if child == 0:  # pragma: no cover  (runs in the child)
        code = 1
        try:
            store.threads.create()
            own = _session(store)
            fresh = own != parent_session if store.engine.dialect.name == "postgresql" else True
            code = 0 if fresh and len(store.threads.list()) == 1 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _session(store) == parent_session  # the parent keeps its connection
    store.threads.create()
    assert len(store.threads.list()) == 2


def test_engine_options_reach_the_connection_pool(store_url: sa.URL, backend: str) -> None:
    with Store(store_url, engine_options={"pool_size": 2, "max_overflow": 1, "pool_timeout": 7}) as opened:
        if backend == "sqlite":
            pool: Any = opened.engine.pool
            assert (pool.size(), pool._max_overflow, pool.timeout()) == (2, 1, 7)
        else:  # the store keeps its PostgreSQL pool itself (kept.py)
            kept = opened._engine_scope._kept
            assert kept is not None and (kept.idle, kept.size, kept.timeout) == (2, 3, 7)
