"""Where a repository gets its connection. Repositories never open, commit or roll back.

A Store's repositories run each call as its own unit of work (`EngineScope`); the repositories
of a `transaction()` share that transaction's connection (`ConnectionScope`), and the
transaction alone commits or rolls back.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

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
        # PostgreSQL connections go through the pool, whose pre-ping replaces one the server dropped;
        # in-memory SQLite has a single connection, shared by the pool already.
        kept = engine.dialect.name == "sqlite" and not isinstance(engine.pool, StaticPool)
        self._hot = HotConnection(engine) if kept else None

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
        return RawUnit(self._engine, self._hot, "BEGIN")

    def raw_write(self) -> RawUnit:
        self._ready()
        return RawUnit(self._engine, self._hot, "BEGIN IMMEDIATE")

    def close(self) -> None:
        """Close the connection kept at hand, once no one is using it."""
        if self._hot is not None:
            self._hot.close()


class HotConnection:
    """One DBAPI connection of a SQLite file store kept at hand for its hot paths: checking a
    connection out of SQLAlchemy's pool and back costs about as much as reading a row by its key.
    A caller that finds it free takes it; one that finds it taken (another thread) uses the
    engine's pool. It comes from a pool of its own, with the engine's connect settings, so that it
    holds no slot of the engine's pool, which transactions and migrations draw on. A forked child
    starts without it, as it starts without its parent's pooled connections."""

    def __init__(self, engine: Engine) -> None:
        self._pool = engine.pool.recreate()
        self._connection: Any = None
        self._lock = threading.Lock()
        _hot_connections.add(self)

    def take(self) -> Any:
        """The connection, now this caller's until `give_back`, or None when it is taken."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._connection is None:
                self._connection = self._pool.connect()
        except BaseException:
            self._lock.release()
            raise
        return self._connection

    def give_back(self, *, broken: bool) -> None:
        """End this caller's use; a `broken` connection (its COMMIT or ROLLBACK failed) is closed."""
        try:
            if broken:
                connection, self._connection = self._connection, None
                connection.invalidate()
        finally:
            self._lock.release()

    def close(self) -> None:
        """Close the connection, waiting for a caller that is using it to finish."""
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()
            self._pool.dispose()

    def forget(self) -> None:
        """In a forked child: drop the parent's connection. It is kept referenced, never closed or
        reset here: it is the parent's."""
        if self._connection is not None:
            _parents_connections.append(self._connection)
        self._connection = None
        self._lock = threading.Lock()
        self._pool = self._pool.recreate()


_hot_connections: weakref.WeakSet[HotConnection] = weakref.WeakSet()
_parents_connections: list[Any] = []


def _forget_parent_hot_connections() -> None:
    for hot in list(_hot_connections):
        hot.forget()


os.register_at_fork(after_in_child=_forget_parent_hot_connections)


class RawUnit:
    """A unit of work on a DBAPI connection, with our own BEGIN and COMMIT: the hot paths' unit of
    work without SQLAlchemy's per-call Connection. PostgreSQL's driver begins implicitly.
    Written as a class rather than a generator because it runs on every hot call."""

    __slots__ = ("_begin", "_connection", "_engine", "_hot", "_taken")

    def __init__(self, engine: Engine, hot: HotConnection | None, begin: str) -> None:
        self._engine = engine
        self._hot = hot
        self._begin = begin if engine.dialect.name == "sqlite" else None

    def __enter__(self) -> Raw:
        try:
            hot = self._hot.take() if self._hot is not None else None
            self._taken = hot is not None
            self._connection = hot if hot is not None else self._engine.raw_connection()
        except DATABASE_ERRORS as error:
            raise map_error(error) from error
        if self._begin is not None:
            try:
                self._connection.cursor().execute(self._begin)
            except BaseException as error:  # refused, or interrupted once it had begun
                with suppress(*DATABASE_ERRORS):  # the error to report is the one that stopped the BEGIN
                    self._finish(commit=False)
                if isinstance(error, DATABASE_ERRORS):
                    raise map_error(error) from error
                raise
        return Raw(self._connection, self._engine.dialect)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _trace: object) -> None:
        try:
            self._finish(commit=kind is None)
        except DATABASE_ERRORS as failure:
            raise map_error(failure) from failure
        if isinstance(error, DATABASE_ERRORS):
            raise map_error(error) from error

    def _finish(self, *, commit: bool) -> None:
        """Commit or roll back, then let the connection go, even if that fails or is interrupted."""
        broken = True
        try:
            if commit:
                self._connection.commit()
            else:
                self._connection.rollback()
            broken = False
        finally:
            if self._taken:
                assert self._hot is not None
                self._hot.give_back(broken=broken)
            else:
                self._connection.close()  # the pool rolls back whatever is left open


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
