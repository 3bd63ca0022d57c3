"""Driver errors become threadstore errors by their codes, never by their message text.

Most errors here are real: raised by sqlite3 and by psycopg against the test PostgreSQL, each
provoked the way it happens in production (a duplicate key, a second writer, a locked row, a
lost serialization race, NUL in text). The tests that show the text is ignored use errors whose
message says one thing and whose code another: PostgreSQL's own `RAISE ... USING ERRCODE`, or a
driver error object built with a code set by hand. PostgreSQL tests run only when
THREADSTORE_TEST_POSTGRES_URL is set; the tests that only build psycopg errors need psycopg.
"""

from __future__ import annotations

import importlib.util
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa

from tests.conftest import POSTGRES_URL, SKIP_POSTGRES
from threadstore import ConflictError, StorageError, Store, ThreadStoreError, ValidationError
from threadstore.db import map_error, translated_errors

if TYPE_CHECKING:
    import psycopg

NEEDS_PSYCOPG = pytest.mark.skipif(importlib.util.find_spec("psycopg") is None, reason="needs the postgres extra")


def assert_maps_to(error: Exception, kind: type[ThreadStoreError]) -> ThreadStoreError:
    """`error` maps to exactly `kind` (not a subclass), and the mapped message quotes the driver."""
    mapped = map_error(error)
    assert type(mapped) is kind, f"{type(error).__name__}({error}) mapped to {type(mapped).__name__}"
    assert str(getattr(error, "orig", None) or error) in str(mapped)
    return mapped


# --- SQLite: real errors ------------------------------------------------------------------------


def sqlite_connect(path: Path) -> sqlite3.Connection:
    """A connection that begins no transaction of its own and never waits for a lock."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA busy_timeout=0")
    return connection


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """A WAL database with one table `t` holding the row id 1."""
    path = tmp_path / "errors.db"
    with sqlite_connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        connection.execute("INSERT INTO t VALUES (1)")
    connection.close()
    return path


@pytest.fixture
def sqlite_pair(sqlite_path: Path) -> Iterator[tuple[sqlite3.Connection, sqlite3.Connection]]:
    """Two connections to the same database file."""
    first, second = sqlite_connect(sqlite_path), sqlite_connect(sqlite_path)
    yield first, second
    first.close()
    second.close()


def test_sqlite_primary_key_violation_is_a_conflict(sqlite_path: Path) -> None:
    connection = sqlite_connect(sqlite_path)
    with pytest.raises(sqlite3.IntegrityError) as caught:
        connection.execute("INSERT INTO t VALUES (1)")
    connection.close()
    assert caught.value.sqlite_errorname == "SQLITE_CONSTRAINT_PRIMARYKEY"
    assert_maps_to(caught.value, ConflictError)


def test_sqlite_busy_from_a_second_writer_is_a_conflict(
    sqlite_pair: tuple[sqlite3.Connection, sqlite3.Connection],
) -> None:
    first, second = sqlite_pair
    first.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as caught:
        second.execute("BEGIN IMMEDIATE")
    first.execute("ROLLBACK")
    assert caught.value.sqlite_errorcode == sqlite3.SQLITE_BUSY
    assert_maps_to(caught.value, ConflictError)


def test_sqlite_busy_snapshot_extended_code_is_a_conflict(
    sqlite_pair: tuple[sqlite3.Connection, sqlite3.Connection],
) -> None:
    reader, writer = sqlite_pair
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM t").fetchall()  # the read transaction holds a WAL snapshot
    writer.execute("INSERT INTO t VALUES (2)")  # which this commit makes stale
    with pytest.raises(sqlite3.OperationalError) as caught:
        reader.execute("INSERT INTO t VALUES (3)")
    reader.execute("ROLLBACK")
    assert caught.value.sqlite_errorname == "SQLITE_BUSY_SNAPSHOT"
    assert_maps_to(caught.value, ConflictError)


def test_sqlite_locked_table_is_a_conflict(sqlite_path: Path) -> None:
    connection = sqlite_connect(sqlite_path)
    connection.execute("INSERT INTO t VALUES (2), (3)")
    reading = connection.execute("SELECT * FROM t")
    reading.fetchone()  # the statement is still running over t: rows are left
    with pytest.raises(sqlite3.OperationalError) as caught:
        connection.execute("DROP TABLE t")
    reading.close()
    connection.close()
    assert caught.value.sqlite_errorcode == sqlite3.SQLITE_LOCKED
    assert_maps_to(caught.value, ConflictError)


def test_sqlite_other_error_is_a_storage_error(sqlite_path: Path) -> None:
    connection = sqlite_connect(sqlite_path)
    with pytest.raises(sqlite3.OperationalError) as caught:
        connection.execute("SELECT * FROM missing")
    connection.close()
    assert caught.value.sqlite_errorname == "SQLITE_ERROR"
    assert_maps_to(caught.value, StorageError)


def test_sqlite_error_the_driver_raised_itself_is_a_storage_error(sqlite_path: Path) -> None:
    connection = sqlite_connect(sqlite_path)
    connection.close()
    with pytest.raises(sqlite3.ProgrammingError) as caught:
        connection.execute("SELECT 1")
    assert getattr(caught.value, "sqlite_errorcode", None) is None  # raised before reaching SQLite
    assert_maps_to(caught.value, StorageError)


def test_sqlite_error_wrapped_by_sqlalchemy_maps_by_the_driver_error_inside() -> None:
    engine = sa.create_engine("sqlite://")
    with engine.connect() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        with pytest.raises(sa.exc.IntegrityError) as caught:
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    engine.dispose()
    assert isinstance(caught.value.orig, sqlite3.IntegrityError)
    assert_maps_to(caught.value, ConflictError)


def test_mapped_message_holds_the_sqlite_code_and_the_driver_message(sqlite_path: Path) -> None:
    connection = sqlite_connect(sqlite_path)
    with pytest.raises(sqlite3.IntegrityError) as caught:
        connection.execute("INSERT INTO t VALUES (1)")
    connection.close()
    message = str(map_error(caught.value))
    assert "SQLITE_CONSTRAINT_PRIMARYKEY" in message
    assert "UNIQUE constraint failed: t.id" in message


def test_translated_errors_raises_the_mapped_error_from_the_driver_error(sqlite_path: Path) -> None:
    connection = sqlite_connect(sqlite_path)
    with pytest.raises(ConflictError) as caught, translated_errors():
        connection.execute("INSERT INTO t VALUES (1)")
    connection.close()
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)


def test_translated_errors_lets_other_errors_through() -> None:
    with pytest.raises(KeyError), translated_errors():
        raise KeyError("not a database error")


# --- SQLite: the code decides, whatever the message says ----------------------------------------


def sqlite_error(message: str, code: int, name: str) -> sqlite3.OperationalError:
    """A sqlite3 error with `message` and the result code SQLite would have given it."""
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    error.sqlite_errorname = name
    return error


def test_sqlite_locked_message_with_an_other_code_is_a_storage_error() -> None:
    error = sqlite_error("database is locked", sqlite3.SQLITE_ERROR, "SQLITE_ERROR")
    assert_maps_to(error, StorageError)


def test_sqlite_busy_code_with_an_unrelated_message_is_a_conflict() -> None:
    error = sqlite_error("la base de données est verrouillée", sqlite3.SQLITE_BUSY, "SQLITE_BUSY")
    assert_maps_to(error, ConflictError)


# --- psycopg: errors built with a code, no server needed ----------------------------------------


@NEEDS_PSYCOPG
def test_psycopg_error_whose_message_says_locked_maps_by_its_sqlstate() -> None:
    from psycopg import errors

    error = errors.lookup("42P01")("database is locked; could not serialize; deadlock")  # undefined_table
    assert_maps_to(error, StorageError)


@NEEDS_PSYCOPG
def test_psycopg_unlisted_code_of_the_integrity_class_is_a_conflict() -> None:
    from psycopg import errors

    assert_maps_to(errors.lookup("23P01")("conflicting key value"), ConflictError)  # exclusion_violation


@NEEDS_PSYCOPG
def test_psycopg_error_without_a_sqlstate_is_a_storage_error() -> None:
    import psycopg

    error = psycopg.OperationalError("connection failed")
    assert error.sqlstate is None
    assert_maps_to(error, StorageError)


# --- PostgreSQL: real errors --------------------------------------------------------------------


def pg_connect(*, lc_messages: str | None = None) -> psycopg.Connection[Any]:
    """An autocommit psycopg connection to the test database (BEGIN is sent explicitly)."""
    import psycopg

    assert POSTGRES_URL
    url = sa.make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = psycopg.connect(url, autocommit=True)
    if lc_messages is not None:
        connection.execute(f"SET lc_messages TO '{lc_messages}'")
    return connection


def pg_error(connection: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> psycopg.Error:
    """The error PostgreSQL (or psycopg) raises for `sql`."""
    import psycopg

    with pytest.raises(psycopg.Error) as caught:
        connection.execute(sql.encode(), params or None)  # bytes: psycopg's typing for unchecked SQL
    return caught.value


@pytest.fixture
def pg_table(pg_schema: str) -> str:
    """The qualified name of a table `(id int primary key, v int)` holding the ids 1 and 2."""
    name = f"{pg_schema}.t"
    with pg_connect() as connection:
        connection.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int)".encode())
        connection.execute(f"INSERT INTO {name} VALUES (1, 0), (2, 0)".encode())
    return name


@SKIP_POSTGRES
def test_postgres_unique_violation_is_a_conflict(pg_table: str) -> None:
    with pg_connect() as connection:
        error = pg_error(connection, f"INSERT INTO {pg_table} VALUES (1, 0)")
    assert error.sqlstate == "23505"
    assert_maps_to(error, ConflictError)


@SKIP_POSTGRES
def test_mapped_message_holds_the_sqlstate_and_the_driver_message(pg_table: str) -> None:
    with pg_connect() as connection:
        error = pg_error(connection, f"INSERT INTO {pg_table} VALUES (1, 0)")
    message = str(map_error(error))
    assert "SQLSTATE 23505" in message
    assert "Key (id)=(1) already exists" in message


@SKIP_POSTGRES
def test_postgres_unique_violation_with_lc_messages_c_is_a_conflict(pg_table: str) -> None:
    with pg_connect(lc_messages="C") as connection:
        error = pg_error(connection, f"INSERT INTO {pg_table} VALUES (1, 0)")
    assert_maps_to(error, ConflictError)


@SKIP_POSTGRES
def test_postgres_nul_in_a_text_parameter_is_a_validation_error() -> None:
    with pg_connect() as connection:
        error = pg_error(connection, "SELECT %s::text", ("a\x00b",))
    assert error.sqlstate is None  # psycopg refuses it before sending: it goes by its DataError class
    assert_maps_to(error, ValidationError)


@SKIP_POSTGRES
def test_postgres_nul_escape_in_jsonb_is_a_validation_error() -> None:
    with pg_connect() as connection:
        error = pg_error(connection, """SELECT '"a\\u0000b"'::jsonb""")
    assert error.sqlstate == "22P05"  # untranslatable_character
    assert_maps_to(error, ValidationError)


@SKIP_POSTGRES
def test_postgres_nul_byte_decoded_to_text_is_a_validation_error() -> None:
    with pg_connect() as connection:
        error = pg_error(connection, "SELECT convert_from('\\x6100'::bytea, 'UTF8')")
    assert error.sqlstate == "22021"  # character_not_in_repertoire
    assert_maps_to(error, ValidationError)


@SKIP_POSTGRES
def test_postgres_value_too_long_for_its_column_is_a_validation_error() -> None:
    with pg_connect() as connection:
        connection.execute("CREATE TEMP TABLE short (s varchar(3))")
        error = pg_error(connection, "INSERT INTO short VALUES (%s)", ("abcd",))
    assert error.sqlstate == "22001"  # string_data_right_truncation
    assert_maps_to(error, ValidationError)


@SKIP_POSTGRES
def test_postgres_division_by_zero_is_a_storage_error() -> None:
    with pg_connect() as connection:
        error = pg_error(connection, "SELECT 1 / 0")
    assert error.sqlstate == "22012"  # a data exception no caller's value can cause
    assert_maps_to(error, StorageError)


@SKIP_POSTGRES
def test_postgres_exclusion_violation_is_a_conflict(pg_schema: str) -> None:
    with pg_connect() as connection:
        connection.execute(f"CREATE TABLE {pg_schema}.spans (s int4range, EXCLUDE USING gist (s WITH &&))".encode())
        connection.execute(f"INSERT INTO {pg_schema}.spans VALUES ('[1,5)')".encode())
        error = pg_error(connection, f"INSERT INTO {pg_schema}.spans VALUES ('[3,8)')")
    assert error.sqlstate == "23P01"  # listed by its class only
    assert_maps_to(error, ConflictError)


@SKIP_POSTGRES
def test_postgres_nowait_on_a_locked_row_is_a_conflict(pg_table: str) -> None:
    with pg_connect() as holder, pg_connect() as other:
        holder.execute("BEGIN")
        holder.execute(f"SELECT * FROM {pg_table} WHERE id = 1 FOR UPDATE".encode())
        error = pg_error(other, f"SELECT * FROM {pg_table} WHERE id = 1 FOR UPDATE NOWAIT")
        holder.execute("ROLLBACK")
    assert error.sqlstate == "55P03"  # lock_not_available
    assert_maps_to(error, ConflictError)


@SKIP_POSTGRES
def test_postgres_lock_timeout_is_a_conflict(pg_table: str) -> None:
    with pg_connect() as holder, pg_connect() as other:
        holder.execute("BEGIN")
        holder.execute(f"UPDATE {pg_table} SET v = 1 WHERE id = 1".encode())
        other.execute("SET lock_timeout = '50ms'")
        error = pg_error(other, f"UPDATE {pg_table} SET v = 2 WHERE id = 1")
        holder.execute("ROLLBACK")
    assert error.sqlstate == "55P03"  # lock_not_available
    assert_maps_to(error, ConflictError)


@SKIP_POSTGRES
def test_postgres_serialization_failure_is_a_conflict(pg_table: str) -> None:
    with pg_connect() as loser, pg_connect() as winner:
        loser.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        loser.execute(f"SELECT * FROM {pg_table}".encode())  # takes the snapshot
        winner.execute(f"UPDATE {pg_table} SET v = 1 WHERE id = 1".encode())
        error = pg_error(loser, f"UPDATE {pg_table} SET v = 2 WHERE id = 1")
        loser.execute("ROLLBACK")
    assert error.sqlstate == "40001"  # serialization_failure
    assert_maps_to(error, ConflictError)


@SKIP_POSTGRES
def test_postgres_deadlock_is_a_conflict(pg_table: str) -> None:
    import psycopg

    errors: list[psycopg.Error] = []
    both_hold_a_row = threading.Barrier(2, timeout=10)

    def lock_then_wait(held: int, wanted: int) -> None:
        with pg_connect() as connection:
            connection.execute("SET deadlock_timeout = '50ms'")
            connection.execute("BEGIN")
            connection.execute(f"UPDATE {pg_table} SET v = 1 WHERE id = {held}".encode())
            both_hold_a_row.wait()
            try:
                connection.execute(f"UPDATE {pg_table} SET v = 1 WHERE id = {wanted}".encode())
            except psycopg.Error as error:
                errors.append(error)
            connection.execute("ROLLBACK")  # the victim's rollback lets the other one through

    threads = [threading.Thread(target=lock_then_wait, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [error.sqlstate for error in errors] == ["40P01"]  # deadlock_detected, for one of the two
    assert_maps_to(errors[0], ConflictError)


@SKIP_POSTGRES
def test_postgres_error_wrapped_by_sqlalchemy_maps_by_the_driver_error_inside() -> None:
    assert POSTGRES_URL
    engine = sa.create_engine(sa.make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"))
    with engine.connect() as connection, pytest.raises(sa.exc.DataError) as caught:
        connection.execute(sa.text("SELECT CAST(:value AS text)"), {"value": "a\x00b"})
    engine.dispose()
    assert_maps_to(caught.value, ValidationError)


# --- PostgreSQL: the code decides, whatever the message says ------------------------------------


def raise_in_postgres(message: str, errcode: str) -> str:
    """SQL that makes PostgreSQL itself raise `message` with the SQLSTATE condition `errcode`."""
    return f"DO $$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = '{errcode}'; END $$"


@SKIP_POSTGRES
def test_postgres_error_whose_message_says_locked_maps_by_its_sqlstate() -> None:
    with pg_connect() as connection:
        error = pg_error(connection, raise_in_postgres("database is locked; could not serialize", "undefined_table"))
    assert error.sqlstate == "42P01"
    assert_maps_to(error, StorageError)


@SKIP_POSTGRES
def test_postgres_serialization_failure_with_a_translated_message_is_a_conflict() -> None:
    # The German translation of "could not serialize access due to concurrent update".
    german = "konnte Zugriff nicht serialisieren wegen gleichzeitiger Aktualisierung"
    with pg_connect() as connection:
        error = pg_error(connection, raise_in_postgres(german, "serialization_failure"))
    assert error.sqlstate == "40001"
    assert_maps_to(error, ConflictError)


@SKIP_POSTGRES
def test_postgres_nul_refusal_with_a_translated_message_is_a_validation_error() -> None:
    german = "Zeichen kann nicht übersetzt werden"
    with pg_connect() as connection:
        error = pg_error(connection, raise_in_postgres(german, "untranslatable_character"))
    assert error.sqlstate == "22P05"
    assert_maps_to(error, ValidationError)


def test_a_pool_with_no_free_connection_within_its_timeout_is_a_storage_error(store_url: sa.URL, backend: str) -> None:
    options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2}
    with Store(store_url, engine_options=options) as store:
        # The transaction holds the store's one connection (PostgreSQL: its pool of one; SQLite: the
        # connection kept for its hot paths, so that calls then need the engine's pool, held here).
        held = store.engine.raw_connection() if backend == "sqlite" else None
        try:
            with store.transaction():
                outcome: list[BaseException] = []
                worker = threading.Thread(target=lambda: _capture(outcome, store.threads.list))
                worker.start()
                worker.join()
            assert len(outcome) == 1 and isinstance(outcome[0], StorageError), outcome
            assert "pool_timeout" in str(outcome[0])
            assert isinstance(outcome[0].__cause__, sa.exc.TimeoutError)
        finally:
            if held is not None:
                held.close()


def _capture(outcome: list[BaseException], call: Callable[[], object]) -> None:
    try:
        call()
    except BaseException as error:
        outcome.append(error)
