"""Engine creation and the one boundary where database errors become threadstore errors.

SQLite: WAL, foreign keys on, a busy timeout, and BEGIN IMMEDIATE for every write unit of work,
so that a writer waits for the lock up front instead of failing at once when a deferred
read-then-write meets another writer. PostgreSQL: psycopg 3.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sqlite3
import sys
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import orjson
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from threadstore.errors import ConflictError, ReadOnlyError, StorageError, ThreadStoreError, ValidationError
from threadstore.validation import check_choice

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

Synchronous = Literal["NORMAL", "FULL"]
WRITE_OPTION = "threadstore_write"
BUSY_TIMEOUT_MS = 30_000
DEFAULT_URL = "sqlite:///threadstore.db"
URL_VARIABLE = "THREADSTORE_URL"


def normalize_url(url: str | URL) -> URL:
    """Parse `url`, choosing psycopg 3 for a bare ``postgresql://`` (or ``postgres://``) URL.

    Raises:
        ValidationError: the URL cannot be parsed or names a backend threadstore does not support.
    """
    try:
        parsed = sa.make_url(url)
    except exc.ArgumentError as error:
        raise ValidationError(f"Not a database URL: {url!r}.") from error
    if parsed.drivername == "postgres":  # libpq's and Heroku's spelling
        parsed = parsed.set(drivername="postgresql")
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise ValidationError(f"threadstore supports sqlite and postgresql URLs, not {backend!r}.")
    return parsed


def url_from_environment(url: str | URL | None) -> str | URL:
    """`url`, or else $THREADSTORE_URL, or else ``sqlite:///threadstore.db``."""
    if url is not None:
        return url
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def in_schema(url: URL, schema: str | None) -> URL:
    """`url` with PostgreSQL's search_path set to `schema`, where threadstore's tables and version
    table then live (the statements name no schema, so one compiled statement serves every schema).

    Raises:
        ValidationError: `schema` is not a lower-case SQL identifier, or `url` is not PostgreSQL.
    """
    if schema is None:
        return url
    if url.get_backend_name() != "postgresql":
        raise ValidationError("schema= is for PostgreSQL; a SQLite database has one namespace.")
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValidationError(f"Not a schema name threadstore accepts (lower-case letters, digits, _): {schema!r}.")
    given = url.query.get("options")
    option = f"-csearch_path={schema}"
    return url.update_query_dict({"options": f"{given} {option}" if isinstance(given, str) else option})


def require_driver(url: URL, *modules: str) -> None:
    """Check that the driver modules a PostgreSQL `url` needs are installed.

    Raises:
        StorageError: one is missing; the message names the extra to install.
    """
    if url.get_backend_name() != "postgresql":
        return
    missing = [name for name in ("psycopg", *modules) if importlib.util.find_spec(name) is None]
    if missing:
        raise StorageError(
            f"PostgreSQL needs {', '.join(missing)}, which is not installed: pip install 'threadstore[postgres]'"
        )


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


# psycopg decodes JSON and JSONB columns with threadstore's one JSON decoder, orjson's (as
# fastsql decodes SQLite's JSON text), not the standard library's: 0.3 µs a small document
# against 2 µs, 60 of them in a page of 20 messages.
POSTGRES_ENGINE_OPTIONS: dict[str, Any] = {"json_deserializer": orjson.loads}


def create_engine(
    url: str | URL,
    *,
    synchronous: Synchronous = "NORMAL",
    engine_options: Mapping[str, Any] | None = None,
    read_only: bool = False,
) -> Engine:
    """Return an engine for `url` set up as threadstore needs it.

    Args:
        url: a SQLAlchemy URL (``sqlite:///path``, ``postgresql://...``).
        synchronous: SQLite's durability. NORMAL (WAL) never corrupts the database and loses at
            most the last transactions before a power cut; FULL loses none, at a cost per commit.
        engine_options: passed on to sqlalchemy.create_engine, e.g. the PostgreSQL pool's
            ``pool_size``, ``max_overflow``, ``pool_timeout``, ``pool_recycle``.
        read_only: open the database for reading only (see `read_only_url`).

    Raises:
        ValidationError: the URL is not a supported database URL.
        StorageError: a PostgreSQL URL, and the postgres extra is not installed.
    """
    parsed = read_only_url(normalize_url(url)) if read_only else normalize_url(url)
    synchronous = check_choice("synchronous", synchronous, ("NORMAL", "FULL"))
    require_driver(parsed)
    if parsed.get_backend_name() == "postgresql":
        # No pre-ping: a unit of work replaces a connection its first statement finds lost (scope.RawUnit).
        engine = sa.create_engine(parsed, **{**POSTGRES_ENGINE_OPTIONS, **(engine_options or {})})
        _refuse_busy_connections(engine)
        _engines.add(engine)
        return engine
    in_memory = parsed.database in (None, "", ":memory:")
    options: dict[str, Any] = {"connect_args": {"check_same_thread": False}, **(engine_options or {})}
    if in_memory:
        # Every connection to ":memory:" is a new empty database: share one.
        options["poolclass"] = StaticPool
    engine = sa.create_engine(parsed, **options)
    _configure_sqlite(engine, synchronous=synchronous, wal=not in_memory and not read_only)
    _engines.add(engine)
    return engine


def read_only_url(url: URL) -> URL:
    """`url` opened for reading only, by the database itself: a SQLite file by its URI filename
    with ``mode=ro`` (it opens on a read-only mount or without write permission, and SQLite refuses
    every write), a PostgreSQL session with ``default_transaction_read_only`` on (the server refuses
    every write, SQLSTATE 25006). Both refusals map to ReadOnlyError.

    Raises:
        ValidationError: an in-memory SQLite database, which has nothing to read.
    """
    if url.get_backend_name() == "postgresql":
        options = " ".join(filter(None, [str(url.query.get("options", "")), "-c default_transaction_read_only=on"]))
        return url.update_query_dict({"options": options})
    if url.database in (None, "", ":memory:"):
        raise ValidationError("An in-memory SQLite database cannot be opened read-only: it would always be empty.")
    if url.query.get("uri") == "true":  # already a URI filename: add the mode
        return url.update_query_dict({"mode": "ro"})
    params = {"mode": "ro", "uri": "true"}
    # Reading a WAL database takes its shared-memory file (-shm), which SQLite creates beside it.
    # Where it cannot (a read-only directory or mount) and none exists, no one can be writing:
    # open it immutable, which needs none (SQLite then takes no locks and trusts the file).
    directory = os.path.dirname(os.path.abspath(url.database))
    if not os.access(directory, os.W_OK) and not os.path.exists(f"{url.database}-shm"):
        params["immutable"] = "1"
    return url.set(database=f"file:{url.database}").update_query_dict(params)


def create_async_postgres_engine(url: URL, *, engine_options: Mapping[str, Any] | None = None) -> AsyncEngine:
    """An async engine for the PostgreSQL `url` (psycopg's async connections), for AsyncStore.

    Its `sync_engine` is what the repositories run on, inside greenlets (see async_store).

    Raises:
        ValidationError: `url` is not a PostgreSQL URL.
        StorageError: the postgres extra is not installed.
    """
    from sqlalchemy.ext.asyncio import create_async_engine

    if url.get_backend_name() != "postgresql":
        raise ValidationError(f"Not a PostgreSQL URL: {url.render_as_string()!r}.")
    require_driver(url, "greenlet")
    from threadstore.fair_pool import FairAsyncPool

    options = {"poolclass": FairAsyncPool, **POSTGRES_ENGINE_OPTIONS, **(engine_options or {})}
    engine = create_async_engine(url.set(drivername="postgresql+psycopg_async"), **options)
    _refuse_busy_connections(engine.sync_engine)
    _engines.add(engine.sync_engine)
    return engine


def is_busy(dbapi_connection: Any) -> bool:
    """Whether a PostgreSQL connection is not at rest: a call cut short left it inside a
    transaction, a command or a pipeline. psycopg knows the state without a round trip.

    Asked on every unit of work: read from psycopg's libpq connection as plain integers, where
    `connection.info` builds an object and an enum member for each state (3.4 µs a call, a third
    of an empty unit's bookkeeping, against 0.3 µs)."""
    pgconn = getattr(dbapi_connection, "driver_connection", dbapi_connection).pgconn  # async: the adapted one's
    return bool(pgconn.transaction_status != PQTRANS_IDLE or pgconn.pipeline_status != PQ_PIPELINE_OFF)


# libpq's states at rest (psycopg.pq.TransactionStatus.IDLE, psycopg.pq.PipelineStatus.OFF),
# written here so that a SQLite store need not import psycopg.
PQTRANS_IDLE = 0
PQ_PIPELINE_OFF = 0


def _refuse_busy_connections(engine: Engine) -> None:
    """Let the pool hand out only PostgreSQL connections at rest (`is_busy`): a busy one is closed
    and replaced (raising DisconnectionError on checkout is how a SQLAlchemy pool is told so)."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if is_busy(dbapi_connection):
            raise exc.DisconnectionError("A connection was left busy by an interrupted call.")


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
    """The DB-API modules in use: sqlite3, and psycopg once a PostgreSQL engine has imported it
    (a SQLite store never imports it)."""
    psycopg = sys.modules.get("psycopg")
    return [sqlite3] if psycopg is None else [sqlite3, psycopg]


_database_errors: dict[int, tuple[type[Exception], ...]] = {}


def database_errors() -> tuple[type[Exception], ...]:
    """What the boundary translates, for DBAPI calls made outside SQLAlchemy (an ``except
    database_errors():`` clause): the drivers' errors in use (and SQLAlchemy's wrapper of them),
    the pool's timeout when every connection is in use, and a value a driver cannot encode (a lone
    surrogate in text; an integer beyond SQLite's 64 bits) whatever call it came in by."""
    drivers = _drivers()
    found = _database_errors.get(len(drivers))
    if found is None:
        found = _database_errors[len(drivers)] = (
            exc.DBAPIError,
            exc.TimeoutError,
            UnicodeEncodeError,
            OverflowError,
            *(driver.Error for driver in drivers),
        )
    return found


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
_POOL_EXHAUSTED: _Outcome = (
    StorageError,
    "No pooled connection became free within pool_timeout (raise pool_size or max_overflow in engine_options)",
)
_READ_ONLY: _Outcome = (ReadOnlyError, "The database is read-only; nothing was written")

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
    "25006": _READ_ONLY,  # read_only_sql_transaction: a read-only session (Store(read_only=True)) or standby
}

# SQLite primary result codes (https://sqlite.org/rescode.html); an extended code such as
# SQLITE_BUSY_SNAPSHOT or SQLITE_CONSTRAINT_UNIQUE carries its primary code in its low byte.
_SQLITE_CODES: dict[int, _Outcome] = {
    sqlite3.SQLITE_BUSY: _CONTENTION,  # another connection holds the lock, or a WAL snapshot is stale
    sqlite3.SQLITE_LOCKED: _CONTENTION,  # a conflict within one connection or shared cache
    sqlite3.SQLITE_CONSTRAINT: _CONFLICT,  # unique, primary key, foreign key, check, not null, trigger
    sqlite3.SQLITE_READONLY: _READ_ONLY,  # opened with mode=ro, or a file or directory it may not write
}


# An error a driver raised itself, before any database answered, has no code: it goes by its
# DB-API class (PEP 249), e.g. psycopg's refusal of NUL in text is a DataError.
def _uncoded() -> list[tuple[type[Exception], _Outcome]]:
    return [
        *(
            pair
            for driver in _drivers()
            for pair in ((driver.IntegrityError, _CONFLICT), (driver.DataError, _DRIVER_BAD_VALUE))
        ),
        (exc.TimeoutError, _POOL_EXHAUSTED),
        (UnicodeEncodeError, _DRIVER_BAD_VALUE),
        (OverflowError, _DRIVER_BAD_VALUE),
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
    for cls, outcome in _uncoded():
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
        the database cannot store (22P05, 22021: NUL; 22001, 22003, 22P02) or a driver cannot
        encode (a lone surrogate, an integer over 64 bits on SQLite); ReadOnlyError for a write
        on a read-only database (25006, SQLITE_READONLY_*); StorageError for a pool with no free
        connection within its timeout, and for anything else.
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
    except database_errors() as error:
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
