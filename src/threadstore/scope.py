"""Where a repository gets its connection. Repositories never open, commit or roll back.

A Store's repositories run each call as its own unit of work (`EngineScope`); the repositories
of a `transaction()` share that transaction's connection (`ConnectionScope`), and the
transaction alone commits or rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy.engine import Connection, Engine

from threadstore.clock import Clock, unix_micros, unix_seconds
from threadstore.db import DATABASE_ERRORS, map_error, translated_errors, unit_of_work
from threadstore.fastsql import Raw


class Scope:
    """The connection and clock a repository works with."""

    def __init__(self, clock: Clock, dialect: str) -> None:
        self.clock = clock
        self.dialect = dialect

    def now(self) -> int:
        """The store clock's current time in Unix seconds."""
        return unix_seconds(self.clock())

    def now_micros(self) -> int:
        """The store clock's current time in Unix microseconds."""
        return unix_micros(self.clock())

    def read(self) -> AbstractContextManager[Connection]:
        """A connection for reading."""
        raise NotImplementedError

    def write(self) -> AbstractContextManager[Connection]:
        """A connection for writing (on SQLite, under BEGIN IMMEDIATE)."""
        raise NotImplementedError

    def raw_read(self) -> AbstractContextManager[Raw]:
        """The DBAPI connection of a unit of work for reading, for the hot paths (fastsql)."""
        raise NotImplementedError

    def raw_write(self) -> AbstractContextManager[Raw]:
        """The DBAPI connection of a unit of work for writing, for the hot paths (fastsql)."""
        raise NotImplementedError


class EngineScope(Scope):
    """Each read or write is its own transaction, committed when it succeeds."""

    def __init__(self, engine: Engine, clock: Clock, ready: Callable[[], None]) -> None:
        super().__init__(clock, engine.dialect.name)
        self._engine = engine
        self._ready = ready

    @contextmanager
    def read(self) -> Iterator[Connection]:
        self._ready()
        with unit_of_work(self._engine, write=False) as connection:
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        self._ready()
        with unit_of_work(self._engine, write=True) as connection:
            yield connection

    def raw_read(self) -> RawUnit:
        self._ready()
        return RawUnit(self._engine, "BEGIN")

    def raw_write(self) -> RawUnit:
        self._ready()
        return RawUnit(self._engine, "BEGIN IMMEDIATE")


class RawUnit:
    """A unit of work on a pooled DBAPI connection, with our own BEGIN and COMMIT: the hot paths'
    unit of work without SQLAlchemy's per-call Connection. PostgreSQL's driver begins implicitly.
    Written as a class rather than a generator because it runs on every hot call."""

    __slots__ = ("_begin", "_connection", "_engine")

    def __init__(self, engine: Engine, begin: str) -> None:
        self._engine = engine
        self._begin = begin if engine.dialect.name == "sqlite" else None

    def __enter__(self) -> Raw:
        try:
            self._connection = self._engine.raw_connection()
            if self._begin is not None:
                self._connection.cursor().execute(self._begin)
        except DATABASE_ERRORS as error:
            raise map_error(error) from error
        return Raw(self._connection, self._engine.dialect)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _trace: object) -> None:
        connection = self._connection
        try:
            if kind is None:
                connection.commit()
            else:
                connection.rollback()
        except DATABASE_ERRORS as failure:
            raise map_error(failure) from failure
        finally:
            connection.close()
        if isinstance(error, DATABASE_ERRORS):
            raise map_error(error) from error


class ConnectionScope(Scope):
    """Every read and write joins one caller-owned transaction."""

    def __init__(self, connection: Connection, clock: Clock) -> None:
        super().__init__(clock, connection.dialect.name)
        self._connection = connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with translated_errors():
            yield self._connection

    write = read

    @contextmanager
    def raw_read(self) -> Iterator[Raw]:
        with translated_errors():
            yield Raw(self._connection.connection.dbapi_connection, self._connection.dialect)

    raw_write = raw_read
