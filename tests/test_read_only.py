"""`Store(url, read_only=True)` reads a database it may not write (a backup, a replica, a read-only
mount): every write raises ReadOnlyError and writes nothing, it is never migrated, and its schema
must still be current."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import OPEN_STORE, snapshot
from threadstore import ReadOnlyError, SchemaOutOfDateError, Store
from threadstore.scope import EngineScope


@pytest.fixture
def written(store_url: sa.URL) -> tuple[str, str]:
    """A thread with a message, written before the read-only store opens."""
    with Store(store_url) as store:
        thread = store.threads.create(metadata={"user": "1"}).id
        message = store.messages.create(thread, role="user", content="hello").id
    return thread, message


@pytest.fixture
def read_only(store_url: sa.URL, store_kind: str, written: tuple[str, str]) -> Iterator[Store]:
    with OPEN_STORE[store_kind](store_url, read_only=True) as opened:
        yield opened


def writes(store: Store, thread: str, message: str) -> dict[str, Callable[[], object]]:
    def in_a_transaction() -> None:
        with store.transaction() as tx:
            tx.threads.create()

    return {
        "threads.create": store.threads.create,
        "threads.update": lambda: store.threads.update(thread, metadata={"user": "2"}),
        "threads.delete": lambda: store.threads.delete(thread),
        "messages.create": lambda: store.messages.create(thread, role="user", content="x"),
        "messages.update": lambda: store.messages.update(message, metadata={"a": "b"}),
        "assistants.create": lambda: store.assistants.create(model="gpt-4o"),
        "langgraph.threads.create": store.langgraph.threads.create,
        "runs.claim_next": store.runs.claim_next,
        "transaction": in_a_transaction,
        "migrate": store.migrate,
    }


def test_a_read_only_store_reads(read_only: Store, written: tuple[str, str]) -> None:
    thread, message = written
    assert read_only.threads.get(thread).metadata == {"user": "1"}
    assert [m.id for m in read_only.messages.list(thread)] == [message]


def test_every_write_on_a_read_only_store_raises_read_only_error_and_writes_nothing(
    read_only: Store, written: tuple[str, str]
) -> None:
    before = snapshot(read_only)
    for name, write in writes(read_only, *written).items():
        with pytest.raises(ReadOnlyError):
            write()
        assert snapshot(read_only) == before, name


@pytest.mark.parametrize("store_kind", ["sync"])
def test_the_database_itself_refuses_a_write_from_a_read_only_store(read_only: Store, written: tuple[str, str]) -> None:
    scope = read_only.threads._scope
    assert isinstance(scope, EngineScope)
    scope._read_only = False  # past the store's own check: SQLite's mode=ro, PostgreSQL's read-only session
    before = snapshot(read_only)
    with pytest.raises(ReadOnlyError):
        read_only.threads.create()
    with pytest.raises(ReadOnlyError):
        read_only.messages.create(written[0], role="user", content="x")
    assert snapshot(read_only) == before


def test_a_read_only_store_is_never_migrated_and_needs_a_current_schema(empty_url: sa.URL) -> None:
    if empty_url.get_backend_name() == "sqlite":
        assert empty_url.database
        sqlite3.connect(empty_url.database).close()  # an empty file, never migrated
    with Store(empty_url, read_only=True, migrate_on_open=True) as store, pytest.raises(SchemaOutOfDateError):
        store.threads.list()
    with sa.create_engine(empty_url).connect() as connection:
        assert sa.inspect(connection).get_table_names() == []


READ_WITHOUT_WRITE_PERMISSION = """
import sys
from threadstore import ReadOnlyError, Store
store = Store(sys.argv[1], read_only=True)
print(len(store.threads.list().data))
try:
    store.threads.create()
except ReadOnlyError:
    print("refused")
store.close()
"""


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None, reason="root ignores permissions; setpriv drops that"
)
def test_a_sqlite_file_without_write_permission_in_a_read_only_directory_is_read(sqlite_template: Path) -> None:
    directory = Path(tempfile.mkdtemp())
    try:
        path = directory / "store.db"
        shutil.copy(sqlite_template, path)
        with Store(f"sqlite:///{path}") as store:
            store.threads.create()
        path.chmod(0o444)
        directory.chmod(0o555)
        source = str(Path(__file__).parents[1] / "src")
        # Root ignores file permissions unless it runs without CAP_DAC_OVERRIDE.
        drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
        result = subprocess.run(
            [*drop, sys.executable, "-c", READ_WITHOUT_WRITE_PERMISSION, f"sqlite:///{path}"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": source},
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["1", "refused"]
        assert sorted(p.name for p in directory.iterdir()) == ["store.db"]  # nothing created beside it
    finally:
        directory.chmod(0o755)
        shutil.rmtree(directory)
