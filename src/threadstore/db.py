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
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from threadstore.errors import ConflictError, StorageError, ThreadStoreError, ValidationError
from threadstore.validation import check_choice

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


def _driver_errors() -> tuple[type[Exception], ...]:
    """The base error classes of the installed drivers, for DBAPI calls made outside SQLAlchemy."""
    errors: list[type[Exception]] = [sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # the postgres extra is not installed
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


DATABASE_ERRORS: tuple[type[Exception], ...] = (exc.DBAPIError, *_driver_errors())


def _is_integrity_error(error: BaseException) -> bool:
    # SQLAlchemy's, sqlite3's and psycopg's integrity errors all carry the DBAPI's class name.
    return any(cls.__name__ == "IntegrityError" for cls in type(error).__mro__)


def map_error(error: Exception) -> ThreadStoreError:
    """Translate a driver error (SQLAlchemy's wrapper, or the driver's own) into threadstore's tree."""
    orig: BaseException = error
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        orig = error.orig
    if _is_integrity_error(orig):
        return ConflictError(f"The write conflicts with the stored data: {orig}")
    text = str(orig).lower()
    if "cannot contain nul" in text:
        # PostgreSQL refuses NUL in text even in a lookup; SQLite simply finds nothing.
        return ValidationError(f"NUL characters are refused: {orig}")
    if "database is locked" in text or "could not serialize" in text or "deadlock" in text:
        return ConflictError(f"The database refused the write under contention: {orig}")
    return StorageError(f"The database failed: {orig}")


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise driver errors inside the block as threadstore errors (`raise ... from`).

    Raises:
        ConflictError: a constraint was violated or the write lost to a concurrent one.
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
