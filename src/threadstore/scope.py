"""Where a repository gets its executor. Repositories never open, commit or roll back.

Every repository call runs its statements on one executor (`fastsql.Raw`) inside one kind of
unit of work (`RawUnit`): a Store's repositories open a unit per call (`EngineScope`); the
repositories of a `transaction()` share that transaction's unit (`TransactionScope`), and the
transaction alone commits or rolls back.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from threadstore.clock import Clock, unix_micros, unix_seconds
from threadstore.db import DATABASE_ERRORS, map_error, translated_errors
from threadstore.events import log
from threadstore.events.wakeups import Wakeups
from threadstore.fastsql import Raw


class Scope:
    """The executor and clock a repository works with."""

    def __init__(self, clock: Clock, dialect: str, wakeups: Wakeups | None = None) -> None:
        self.clock = clock
        self.dialect = dialect
        self.wakeups = wakeups or Wakeups()  # when followers of events read again

    def now(self) -> int:
        """The store clock's current time in Unix seconds."""
        return unix_seconds(self.clock())

    def now_micros(self) -> int:
        """The store clock's current time in Unix microseconds."""
        return unix_micros(self.clock())

    def read(self) -> AbstractContextManager[Raw]:
        """The executor of a unit of work for reading."""
        raise NotImplementedError

    def write(self) -> AbstractContextManager[Raw]:
        """The executor of a unit of work for writing (on SQLite, under BEGIN IMMEDIATE)."""
        raise NotImplementedError


class EngineScope(Scope):
    """Each read or write is its own unit of work, committed when it succeeds."""

    def __init__(self, engine: Engine, clock: Clock, ready: Callable[[], None], *, events: bool = True) -> None:
        listened = engine.url if engine.dialect.name == "postgresql" else None
        super().__init__(clock, engine.dialect.name, Wakeups(listened))
        self._engine = engine
        self._ready = ready
        self._events = events
        # In-memory SQLite has a single connection, shared by the pool already; PostgreSQL
        # connections come from the pool (a dropped one is replaced by RawUnit).
        kept = engine.dialect.name == "sqlite" and not isinstance(engine.pool, StaticPool)
        self._hot = HotConnection(engine) if kept else None

    def read(self) -> RawUnit:
        self._ready()
        return RawUnit(self._engine, self._hot, "BEGIN", self._events)

    def write(self) -> RawUnit:
        self._ready()
        return RawUnit(self._engine, self._hot, "BEGIN IMMEDIATE", self._events)

    def close(self) -> None:
        """Stop listening for events, and close the connection kept at hand once no one uses it."""
        self.wakeups.close()
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
    """The unit of work: a DBAPI connection with our own BEGIN and COMMIT, and its executor.

    SQLite: BEGIN (reads) or BEGIN IMMEDIATE (writes) is sent on entry. PostgreSQL: the driver
    begins implicitly with the first statement; no ping precedes it. If that first statement
    finds the connection lost (the server restarted or dropped it while it sat in the pool), the
    connection is discarded and the statement runs once more on a fresh one: nothing of the unit
    had reached the database, so nothing is repeated.
    Written as a class rather than a generator because it runs on every call.
    """

    __slots__ = ("_begin", "_engine", "_events", "_hot", "_raw", "_taken")

    def __init__(self, engine: Engine, hot: HotConnection | None, begin: str, events: bool = True) -> None:
        self._engine = engine
        self._hot = hot
        self._events = events
        self._begin = begin if engine.dialect.name == "sqlite" else None

    def __enter__(self) -> Raw:
        try:
            hot = self._hot.take() if self._hot is not None else None
            self._taken = hot is not None
            connection = hot if hot is not None else self._engine.raw_connection()
        except DATABASE_ERRORS as error:
            raise map_error(error) from error
        if self._begin is None:
            self._raw = Raw(connection, self._engine.dialect, self._reconnect, events=self._events)
            return self._raw
        self._raw = Raw(connection, self._engine.dialect, events=self._events)
        try:
            self._raw.cursor().execute(self._begin)
        except BaseException as error:  # refused, or interrupted once it had begun
            with suppress(*DATABASE_ERRORS):  # the error to report is the one that stopped the BEGIN
                self._finish(commit=False)
            if isinstance(error, DATABASE_ERRORS):
                raise map_error(error) from error
            raise
        return self._raw

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _trace: object) -> None:
        commit = kind is None
        try:
            if commit:
                self._flush()
            self._finish(commit=commit)
        except DATABASE_ERRORS as failure:
            raise map_error(failure) from failure
        if isinstance(error, DATABASE_ERRORS):
            raise map_error(error) from error

    def _reconnect(self, error: BaseException, cursor: Any) -> Any:
        """A fresh connection in place of one the first statement found lost; None otherwise."""
        connection = self._raw.connection
        if not isinstance(error, DATABASE_ERRORS):
            return None
        if not self._engine.dialect.is_disconnect(error, connection.dbapi_connection, cursor):  # type: ignore[arg-type]
            return None
        connection.invalidate()
        return self._engine.raw_connection()

    def _flush(self) -> None:
        """Write the unit's events; if that fails, roll back and let the connection go first."""
        try:
            log.flush(self._raw)
        except BaseException:
            self._finish(commit=False)
            raise

    def _finish(self, *, commit: bool) -> None:
        """Commit or roll back, then let the connection go, even if that fails or is interrupted."""
        connection = self._raw.connection
        broken = True
        try:
            if commit:
                connection.commit()
            else:
                connection.rollback()
            broken = False
        finally:
            if self._taken:
                assert self._hot is not None
                self._hot.give_back(broken=broken)
            else:
                connection.close()  # the pool rolls back whatever is left open


class TransactionScope(Scope):
    """Every read and write joins one caller-owned unit of work."""

    def __init__(self, raw: Raw, clock: Clock) -> None:
        super().__init__(clock, raw.dialect.name)
        self._raw = raw

    @contextmanager
    def read(self) -> Iterator[Raw]:
        with translated_errors():
            yield self._raw

    write = read
