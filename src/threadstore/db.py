"""Engine creation and the one boundary where database errors become threadstore errors.

SQLite: WAL, foreign keys on, a busy timeout, and BEGIN IMMEDIATE for every write unit of work,
so that a writer waits for the lock up front instead of failing at once when a deferred
read-then-write meets another writer. PostgreSQL: psycopg 3.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from threadstore.errors import ConflictError, StorageError, ThreadStoreError, ValidationError
from threadstore.validation import check_choice

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

Synchronous = Literal["NORMAL", "FULL"]
WRITE_OPTION = "threadstore_write"
BUSY_TIMEOUT_MS = 30_000
DEFAULT_URL = "sqlite:///threadstore.db"


def normalize_url(url: str | URL) -> URL:
    """Parse `url`, choosing psycopg 3 for a bare ``postgresql://`` URL.

    Raises:
        ValidationError: the URL cannot be parsed or names a backend threadstore does not support.
    """
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError as error:
        raise ValidationError(f"Not a database URL: {url!r}.") from error
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise ValidationError(f"threadstore supports sqlite and postgresql URLs, not {backend!r}.")
    return parsed


def is_sqlite(engine: Engine | Connection) -> bool:
    """Whether `engine` talks to SQLite."""
    return engine.dialect.name == "sqlite"


_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_parent_connections() -> None:
    # A forked child must never use its parent's connections (SQLite locks and PostgreSQL
    # sessions are per process): drop the pooled ones without closing them for the parent.
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


def create_engine(
    url: str | URL, *, synchronous: Synchronous = "NORMAL", engine_options: Mapping[str, Any] | None = None
) -> Engine:
    """Return an engine for `url` set up as threadstore needs it.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path``, ``postgresql://...``).
        synchronous: SQLite's durability. NORMAL (WAL) never corrupts the database and loses at
            most the last transactions before a power cut; FULL loses none, at a cost per commit.
        engine_options: passed on to sqlalchemy.create_engine, e.g. the PostgreSQL pool's
            ``pool_size``, ``max_overflow``, ``pool_timeout``, ``pool_recycle``.

    Raises:
        ValidationError: the URL is not a supported database URL.
    """
    parsed = normalize_url(url)
    synchronous = check_choice("synchronous", synchronous, ("NORMAL", "FULL"))
    if parsed.get_backend_name() == "postgresql":
        # No pre-ping: a unit of work replaces a connection its first statement finds lost (scope.RawUnit).
        engine = sa.create_engine(parsed, **(engine_options or {}))
        _engines.add(engine)
        return engine
    in_memory = parsed.database in (None, "", ":memory:")
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}, **(engine_options or {})}
    if in_memory:
        # Every connection to ":memory:" is a new empty database: share one.
        options["poolclass"] = StaticPool
    engine = sa.create_engine(parsed, **options)
    _configure_sqlite(engine, synchronous=synchronous, wal=not in_memory)
    _engines.add(engine)
    return engine


def create_async_postgres_engine(url: URL, *, engine_options: Mapping[str, Any] | None = None) -> AsyncEngine:
    """An async engine for the PostgreSQL `url` (psycopg's async connections), for AsyncStore.

    Its `sync_engine` is what the repositories run on, inside greenlets (see async_store).

    Raises:
        ValidationError: `url` is not a PostgreSQL URL.
    """
    from sqlalchemy.ext.asyncio import create_async_engine

    if url.get_backend_name() != "postgresql":
        raise ValidationError(f"Not a PostgreSQL URL: {url.render_as_string()!r}.")
    from threadstore.fair_pool import FairAsyncPool

    options = {"poolclass": FairAsyncPool, **(engine_options or {})}
    engine = create_async_engine(url.set(drivername="postgresql+psycopg_async"), **options)
    _engines.add(engine.sync_engine)
    return engine


def _configure_sqlite(engine: Engine, *, synchronous: Synchronous, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: threadstore emits BEGIN itself (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _drivers() -> list[ModuleType]:
    """The installed DB-API modules: sqlite3, and psycopg with the postgres extra."""
    modules: list[ModuleType] = [sqlite3]
    try:
        import psycopg
    except ImportError:  # the postgres extra is not installed
        pass
    else:
        modules.append(psycopg)
    return modules


def _driver_errors() -> tuple[type[Exception], ...]:
    """The base error classes of the installed drivers, for DBAPI calls made outside SQLAlchemy."""
    return tuple(driver.Error for driver in _drivers())


DATABASE_ERRORS: tuple[type[Exception], ...] = (exc.DBAPIError, *_driver_errors())

# Driver errors are classified by their codes, never by their text: PostgreSQL translates its
# messages (lc_messages) and neither driver promises its wording. An outcome is the error to
# raise and the sentence its message opens with; the code and the driver's message follow.
_Outcome = tuple[type[ThreadStoreError], str]
_CONFLICT: _Outcome = (ConflictError, "The write conflicts with the stored data")
_CONTENTION: _Outcome = (ConflictError, "The database refused the work under contention")
_BAD_TEXT: _Outcome = (ValidationError, "The database refused a character it cannot store (such as NUL)")
_BAD_VALUE: _Outcome = (ValidationError, "The database refused a value")
_DRIVER_BAD_VALUE: _Outcome = (ValidationError, "The driver refused a value")
_FAILED: _Outcome = (StorageError, "The database failed")

# PostgreSQL SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html): a
# five-character code, or a two-character class standing for every code in it not listed. Of
# class 22 only the values a caller can send are listed: the rest (division by zero, a bad
# argument to a function, ...) would be threadstore's own bug, a StorageError.
_SQLSTATES: dict[str, _Outcome] = {
    "23": _CONFLICT,  # integrity_constraint_violation: unique, foreign key, check, not null, exclusion
    "40001": _CONTENTION,  # serialization_failure
    "40P01": _CONTENTION,  # deadlock_detected
    "55P03": _CONTENTION,  # lock_not_available: lock_timeout, NOWAIT
    "22P05": _BAD_TEXT,  # untranslatable_character: \u0000 in JSONB
    "22021": _BAD_TEXT,  # character_not_in_repertoire: a NUL byte, or one invalid in the encoding
    "22001": _BAD_VALUE,  # string_data_right_truncation: too long for its column
    "22003": _BAD_VALUE,  # numeric_value_out_of_range
    "22P02": _BAD_VALUE,  # invalid_text_representation: not valid for its column's type
}

# SQLite primary result codes (https://sqlite.org/rescode.html); an extended code such as
# SQLITE_BUSY_SNAPSHOT or SQLITE_CONSTRAINT_UNIQUE carries its primary code in its low byte.
_SQLITE_CODES: dict[int, _Outcome] = {
    sqlite3.SQLITE_BUSY: _CONTENTION,  # another connection holds the lock, or a WAL snapshot is stale
    sqlite3.SQLITE_LOCKED: _CONTENTION,  # a conflict within one connection or shared cache
    sqlite3.SQLITE_CONSTRAINT: _CONFLICT,  # unique, primary key, foreign key, check, not null, trigger
}

# An error a driver raised itself, before any database answered, has no code: it goes by its
# DB-API class (PEP 249), e.g. psycopg's refusal of NUL in text is a DataError.
_UNCODED: list[tuple[type[Exception], _Outcome]] = [
    pair
    for driver in _drivers()
    for pair in ((driver.IntegrityError, _CONFLICT), (driver.DataError, _DRIVER_BAD_VALUE))
]


def _classify(error: BaseException) -> tuple[_Outcome, str]:
    """The outcome for a driver's own error, and the code it was chosen by, as the message shows it."""
    sqlstate = getattr(error, "sqlstate", None)  # psycopg: from the server, or the error class's own
    if isinstance(sqlstate, str) and sqlstate:
        return _SQLSTATES.get(sqlstate) or _SQLSTATES.get(sqlstate[:2], _FAILED), f"SQLSTATE {sqlstate}"
    code = getattr(error, "sqlite_errorcode", None)  # sqlite3 (Python 3.11+), absent on its own errors
    if isinstance(code, int):
        name = getattr(error, "sqlite_errorname", None) or f"SQLite code {code}"
        return _SQLITE_CODES.get(code & 0xFF, _FAILED), name
    for cls, outcome in _UNCODED:
        if isinstance(error, cls):
            return outcome, cls.__name__
    return _FAILED, type(error).__name__


def map_error(error: Exception) -> ThreadStoreError:
    """Translate a driver error into threadstore's tree, by the driver's code alone.

    The code is psycopg's SQLSTATE or sqlite3's result code, looked up in `_SQLSTATES` (by
    code, then by class) or `_SQLITE_CODES` (by primary code); an error the driver raised before
    reaching the database has none and goes by its DB-API class. The message text is never read,
    so a translated PostgreSQL message (lc_messages) changes nothing. The returned error's
    message holds the code and the driver's message; raise it ``from`` `error`.

    Args:
        error: SQLAlchemy's wrapper (`exc.DBAPIError`, unwrapped to its ``orig``) or a driver's
            own error (`sqlite3.Error`, `psycopg.Error`).

    Returns:
        ConflictError for a violated constraint (SQLSTATE class 23, SQLITE_CONSTRAINT_*) or a
        write refused under contention (40001 serialization_failure, 40P01 deadlock_detected,
        55P03 lock_not_available, SQLITE_BUSY_*, SQLITE_LOCKED_*); ValidationError for a value
        the database cannot store (22P05, 22021: NUL; 22001, 22003, 22P02); StorageError for
        anything else.
    """
    orig: BaseException = error
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        orig = error.orig
    (kind, lead), code = _classify(orig)
    return kind(f"{lead} ({code}): {orig}")


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise driver errors inside the block as threadstore errors (`raise ... from`).

    Raises:
        ConflictError: a constraint was violated or the work lost to a concurrent transaction
            (see map_error).
        ValidationError: the database refused a value it cannot store, such as NUL in text.
        StorageError: any other driver error.
    """
    try:
        yield
    except DATABASE_ERRORS as error:
        raise map_error(error) from error


@contextmanager
def unit_of_work(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """Open a connection and one transaction on `engine`; commit if the block succeeds.

    Raises:
        ConflictError, StorageError: the database refused the work (see translated_errors).
    """
    with translated_errors(), engine.connect() as connection:
        if write and is_sqlite(engine):
            connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection
