"""Units of work on the hot paths: a SQLite store keeps one connection out of the pool for them,
shares it with no one at the same time, gives it up when a commit fails or the store closes, and
never carries it into a forked child."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.pool import PoolResetState

from threadstore import Store, ThreadStoreError
from threadstore.scope import EngineScope


@pytest.fixture
def sqlite_store(sqlite_template: Path, tmp_path: Path) -> Iterator[Store]:
    path = tmp_path / "store.db"
    shutil.copy(sqlite_template, path)
    with Store(f"sqlite:///{path}") as opened:
        yield opened


def scope_of(store: Store) -> EngineScope:
    scope = store.threads._scope
    assert isinstance(scope, EngineScope)
    return scope


def driver_connection_of_a_unit(store: Store) -> object:
    with scope_of(store).read() as raw:
        return raw.connection.driver_connection


def test_consecutive_calls_reuse_one_connection_outside_the_engines_pool(sqlite_store: Store) -> None:
    first = driver_connection_of_a_unit(sqlite_store)
    sqlite_store.threads.create()
    sqlite_store.threads.list()

    assert driver_connection_of_a_unit(sqlite_store) is first
    assert sqlite_store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_pool_of_one_still_serves_transactions_after_single_calls(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    shutil.copy(sqlite_template, path)
    options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 2}
    with Store(f"sqlite:///{path}", engine_options=options) as store:
        thread = store.threads.create().id
        with store.transaction() as tx:
            tx.messages.create(thread, role="user", content="x")
        assert len(store.messages.list(thread)) == 1


class Interrupted(BaseException):
    """What a signal handler raises to cut a call short (as a request timeout does)."""


def _interrupt(*_: object) -> None:
    raise Interrupted


def test_a_call_interrupted_after_its_begin_leaves_no_lock_behind(sqlite_store: Store) -> None:
    thread = sqlite_store.threads.create().id
    path = sqlite_store.engine.url.database
    assert path
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    threading.Timer(0.5, lambda: blocker.execute("COMMIT")).start()  # our BEGIN IMMEDIATE waits till then
    previous = signal.signal(signal.SIGALRM, _interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)  # fires while we wait: raised as the BEGIN returns
        with pytest.raises(Interrupted):
            sqlite_store.messages.create(thread, role="user", content="cut short")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    other = sqlite3.connect(path, isolation_level=None, timeout=0.5)
    other.execute("BEGIN IMMEDIATE")  # the write lock is free: the interrupted unit rolled back
    other.execute("COMMIT")
    sqlite_store.messages.create(thread, role="user", content="after")
    assert [m.content[0]["text"]["value"] for m in sqlite_store.messages.list(thread)] == ["after"]


def test_closing_the_store_waits_for_the_call_in_flight_then_closes_its_connection(sqlite_store: Store) -> None:
    inside, leave = threading.Event(), threading.Event()
    used: list[sqlite3.Connection] = []

    def hold_a_unit() -> None:
        with scope_of(sqlite_store).read() as raw:
            used.append(raw.connection.driver_connection)
            inside.set()
            leave.wait(5)

    holder = threading.Thread(target=hold_a_unit)
    holder.start()
    inside.wait(5)
    threading.Timer(0.2, leave.set).start()
    sqlite_store.close()
    holder.join()

    with pytest.raises(sqlite3.ProgrammingError):
        used[0].execute("SELECT 1")


def test_a_caller_who_finds_the_hot_connection_in_use_gets_another(sqlite_store: Store) -> None:
    seen: list[object] = []
    with scope_of(sqlite_store).read() as raw:
        other = threading.Thread(target=lambda: seen.append(driver_connection_of_a_unit(sqlite_store)))
        other.start()
        other.join()
        assert seen and seen[0] is not raw.connection.driver_connection


def test_threads_sharing_a_store_lose_no_write(sqlite_store: Store) -> None:
    thread = sqlite_store.threads.create().id

    def write() -> None:
        for _ in range(25):
            sqlite_store.messages.create(thread, role="user", content="x")

    workers = [threading.Thread(target=write) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert len(sqlite_store.messages.list(thread, limit=100)) == 100


def test_a_unit_whose_commit_fails_writes_nothing_and_the_store_goes_on(sqlite_store: Store) -> None:
    before = driver_connection_of_a_unit(sqlite_store)
    with pytest.raises(ThreadStoreError), scope_of(sqlite_store).write() as raw:
        cursor = raw.connection.cursor()
        cursor.execute("PRAGMA defer_foreign_keys = ON")  # the broken foreign key fails the COMMIT
        cursor.execute("INSERT INTO threadstore_threads (id, created_at, metadata) VALUES ('thread_orphan', 1, '{}')")
        cursor.execute(
            "INSERT INTO threadstore_messages (id, created_at, thread_id, status, role, content, attachments, metadata)"
            " VALUES ('msg_orphan', 1, 'thread_missing', 'completed', 'user', '[]', '[]', '{}')"
        )

    assert driver_connection_of_a_unit(sqlite_store) is not before
    assert sqlite_store.threads.list().data == []
    assert sqlite_store.threads.create().id


def test_closing_the_store_returns_the_hot_connection(sqlite_store: Store) -> None:
    sqlite_store.threads.create()
    sqlite_store.close()
    assert sqlite_store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_a_forked_child_opens_its_own_hot_connection(sqlite_store: Store) -> None:
    parents = driver_connection_of_a_unit(sqlite_store)
    child = os.fork()
    if child == 0:  # pragma: no cover  (runs in the child)
        code = 1
        try:
            own = driver_connection_of_a_unit(sqlite_store)
            sqlite_store.threads.create()
            code = 0 if own is not parents and len(sqlite_store.threads.list()) == 1 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert driver_connection_of_a_unit(sqlite_store) is parents
    assert len(sqlite_store.threads.list()) == 1


def test_a_unit_gives_its_connection_back_to_the_engines_pool_without_a_second_rollback() -> None:
    with Store("sqlite://") as store:  # in memory: every unit takes the engine's one connection
        resets: list[bool] = []

        @event.listens_for(store.engine, "reset")
        def _on_reset(_dbapi: object, _record: object, state: PoolResetState) -> None:
            resets.append(state.transaction_was_reset)

        store.threads.create()

    assert resets == [True]  # the pool was told the unit had ended its transaction, and rolled back nothing
