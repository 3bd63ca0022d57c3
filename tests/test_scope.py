"""Units of work on the hot paths: a SQLite store keeps one connection out of the pool for them,
shares it with no one at the same time, gives it up when a commit fails or the store closes, and
never carries it into a forked child."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

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
    with scope_of(store).raw_read() as raw:
        return raw.connection.driver_connection


def test_consecutive_calls_reuse_one_connection_without_the_pool(sqlite_store: Store) -> None:
    first = driver_connection_of_a_unit(sqlite_store)
    sqlite_store.threads.create()
    sqlite_store.threads.list()

    assert driver_connection_of_a_unit(sqlite_store) is first
    assert sqlite_store.engine.pool.checkedout() == 1  # type: ignore[attr-defined]


def test_a_caller_who_finds_the_hot_connection_in_use_gets_another(sqlite_store: Store) -> None:
    seen: list[object] = []
    with scope_of(sqlite_store).raw_read() as raw:
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
    with pytest.raises(ThreadStoreError), scope_of(sqlite_store).raw_write() as raw:
        cursor = raw.connection.cursor()
        cursor.execute("PRAGMA defer_foreign_keys = ON")  # the broken foreign key fails the COMMIT
        cursor.execute("INSERT INTO threads (id, created_at, metadata) VALUES ('thread_orphan', 1, '{}')")
        cursor.execute(
            "INSERT INTO messages (id, created_at, thread_id, status, role, content, attachments, metadata)"
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
