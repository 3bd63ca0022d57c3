"""Where a repository gets its executor. Repositories never open, commit or roll back.

Every repository call runs its statements on one executor (`fastsql.Raw`) inside one kind of
unit of work (`RawUnit`): a Store's repositories open a unit per call (`EngineScope`); the
repositories of a `transaction()` share that transaction's unit (`TransactionScope`), and the
transaction alone commits or rolls back.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, Pool, StaticPool

from threadstore.clock import Clock, unix_micros, unix_seconds
from threadstore.db import database_errors, map_error, translated_errors
from threadstore.errors import ReadOnlyError, UsageError
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

    def __init__(
        self, engine: Engine, clock: Clock, ready: Callable[[], None], *, events: bool = True, read_only: bool = False
    ) -> None:
        # In-memory SQLite has a single connection (StaticPool): nothing else commits to probe for.
        watched = None if isinstance(engine.pool, StaticPool) else engine.url
        super().__init__(clock, engine.dialect.name, Wakeups(watched))
        self._engine = engine
        self._ready = ready
        self._events = events
        # In-memory SQLite has a single connection, shared by the pool already; PostgreSQL
        # connections come from the pool (a dropped one is replaced by RawUnit).
        kept = engine.dialect.name == "sqlite" and not isinstance(engine.pool, StaticPool)
        self._hot = HotConnection(engine) if kept else None
        self._reconnect = None if engine.dialect.name == "sqlite" else reconnect_on(engine)
        self._read_only = read_only

    def read(self) -> RawUnit:
        refuse_inside_transaction(self)
        self._ready()
        return RawUnit(self._engine, self._hot, "BEGIN", self._events, self._reconnect)

    def write(self) -> RawUnit:
        """A unit of work for writing.

        Raises:
            ReadOnlyError: the store was opened with ``read_only=True``; nothing is sent.
            UsageError: this thread or task holds the store's transaction open.
        """
        if self._read_only:
            raise ReadOnlyError("This store was opened with read_only=True: it writes nothing.")
        refuse_inside_transaction(self)
        self._ready()
        return RawUnit(self._engine, self._hot, "BEGIN IMMEDIATE", self._events, self._reconnect)

    def close(self) -> None:
        """Stop listening for events, and close the connection kept at hand once no one uses it."""
        self.wakeups.close()
        if self._hot is not None:
            self._hot.close()


class HotConnection:
    """One DBAPI connection of a SQLite file store kept at hand for its hot paths: checking a
    connection out of SQLAlchemy's pool and back costs about as much as reading a row by its key.
    A unit of work that finds it free takes it; one that finds it taken (another thread) uses the
    engine's pool. It comes from a pool of its own, with the engine's connect settings, so that it
    holds no slot of the engine's pool, which transactions and migrations draw on. A forked child
    starts without it, as it starts without its parent's pooled connections.

    Who holds it is recorded by the one call that takes it (`dict.setdefault`, atomic under the
    GIL), as a weak reference to the unit: whenever an interrupt lands, a unit can tell whether it
    holds the connection, and a unit dropped without having ended (an interrupt kept its
    `__exit__` from running) lets it go, closed, when it is collected. A lock acquired in one call
    and recorded in the next would leave a window where neither is known.
    """

    def __init__(self, engine: Engine) -> None:
        self._pool = _own_pool(engine)
        self._connection: Any = None
        self._holder: dict[str, _Holder] = {}  # _HOLDER: the unit (or closer) using it
        self._dropped = self._when_dropped  # one bound method for every take
        _hot_connections.add(self)

    def take(self, unit: object) -> Any:
        """The connection, now `unit`'s until `give_back`, or None when another thread's unit holds it."""
        holder = _Holder(unit, self._dropped)
        found = self._holder.setdefault(_HOLDER, holder)
        if found is not holder:
            if found.thread != holder.thread:
                return None
            # This thread's own earlier unit holds it: one dropped unfinished by an interrupt, in a
            # reference cycle, perhaps with its BEGIN open. Collected now, it lets go at once, not
            # at some later collection while every writer waits for its lock.
            self._let_go_of_the_dropped()
            if self._holder.setdefault(_HOLDER, holder) is not holder:
                return None
        if self._connection is None:
            self._connection = self._pool.connect()
        return self._connection

    def _let_go_of_the_dropped(self) -> None:
        """Collect the units dropped unfinished; finish a release that an interrupt cut short (an
        exception in a collection's callback is only printed, so its release stays half done)."""
        gc.collect()
        found = self._holder.get(_HOLDER)
        if found is not None and found() is None:
            self._release(found, broken=True)

    def give_back(self, unit: object, *, broken: bool) -> bool:
        """End `unit`'s use, if it holds the connection, and say whether it did; a `broken`
        connection (its state unknown: its COMMIT or ROLLBACK failed or was cut short) is closed,
        and the next taker opens another."""
        holder = self._holder.get(_HOLDER)
        if holder is None or holder() is not unit:
            return False
        self._release(holder, broken=broken)
        return True

    def _when_dropped(self, holder: weakref.ref[Any]) -> None:
        """A unit was collected while holding the connection: it may have left a BEGIN open."""
        self._release(holder, broken=True)

    def _release(self, holder: weakref.ref[Any], *, broken: bool) -> None:
        if self._holder.get(_HOLDER) is not holder:
            return
        if broken and self._connection is not None:
            # First, while the holder stays recorded: cut short here, the release is finished by
            # the next taker. Closing a SQLite connection rolls back whatever it left open.
            self._connection.invalidate()
            self._connection = None
        del self._holder[_HOLDER]

    def close(self) -> None:
        """Close the connection, waiting for a unit that is using it to finish."""
        closing = _Closing()
        closer = _Holder(closing)
        waited = False
        while self._holder.setdefault(_HOLDER, closer) is not closer:
            if not waited:  # a unit dropped unfinished in a reference cycle lets go when collected
                self._let_go_of_the_dropped()
                waited = True
            time.sleep(0.001)
        try:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()
            self._pool.dispose()
        finally:
            del self._holder[_HOLDER]

    def forget(self) -> None:
        """In a forked child: drop the parent's connection. It is kept referenced, never closed or
        reset here: it is the parent's."""
        if self._connection is not None:
            _parents_connections.append(self._connection)
        self._connection = None
        self._holder = {}
        self._pool = self._pool.recreate()


def _own_pool(engine: Engine) -> Pool:
    """A pool without a queue, with the engine's connect settings (its events), for the one kept
    connection: a queue's condition variable is not safe against an interrupt landing inside it
    (Python's `with lock:` is not), and the kept connection needs none."""
    pool: Any = engine.pool
    return NullPool(
        pool._creator, reset_on_return=pool._reset_on_return, _dispatch=pool.dispatch, dialect=pool._dialect
    )


class _Holder(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to the unit (or closer) holding the kept connection, and its thread."""

    __slots__ = ("thread",)

    def __init__(self, holder: object, callback: Any = None) -> None:  # weakref.ref.__new__ takes both
        self.thread = threading.get_ident()


class _Closing:
    """What holds the hot connection while the store closes it."""


_HOLDER = "holder"
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

    Interrupts: a signal handler may raise (KeyboardInterrupt, a timeout) between any two
    bytecodes, so every way out lets the connection go. An error or an interrupt in `__enter__`
    or in the block rolls back; on PostgreSQL an interrupt (a BaseException that is not an
    Exception) discards the connection instead, as psycopg cut short may be in the middle of an
    exchange with the server ("another command is already in progress"), whereas each sqlite3
    call runs to its end before Python handles a signal. A connection whose COMMIT or ROLLBACK
    fails or is cut short is discarded; and a unit dropped without its `__exit__` having run (an interrupt that
    lands as `__exit__` is called) lets its connection go when it is collected: SQLAlchemy's pool
    takes back a pooled one, rolled back, and the hot connection closes one it held.
    Written as a class rather than a generator because it runs on every call.
    """

    __slots__ = ("__weakref__", "_begin", "_engine", "_events", "_hot", "_raw", "_reconnect")

    def __init__(
        self, engine: Engine, hot: HotConnection | None, begin: str, events: bool = True, reconnect: Any = None
    ) -> None:
        self._engine = engine
        self._hot = hot
        self._events = events
        self._begin = begin if engine.dialect.name == "sqlite" else None
        self._reconnect = reconnect
        self._raw: Raw | None = None

    def __enter__(self) -> Raw:
        try:
            connection = self._hot.take(self) if self._hot is not None else None
            if connection is None:
                connection = self._engine.raw_connection()
            raw = self._raw = Raw(connection, self._engine.dialect, self._reconnect, events=self._events)
            if self._begin is not None:
                raw.cursor().execute(self._begin)
        except BaseException as error:  # refused, or interrupted anywhere on the way in
            self._end(error)
            if isinstance(error, database_errors()):
                raise map_error(error) from error
            raise
        return raw

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _trace: object) -> None:
        if kind is None and self._raw.pending:  # type: ignore[union-attr]
            try:
                log.flush(self._raw)  # type: ignore[arg-type]
            except BaseException as failure:  # the events could not be written: roll back
                self._end(failure)
                if isinstance(failure, database_errors()):
                    raise map_error(failure) from failure
                raise
        self._end(error)
        if isinstance(error, database_errors()):
            raise map_error(error) from error

    def _end(self, error: BaseException | None) -> None:
        """Commit (no `error`) or roll back, then let the connection go; after an interrupt, on a
        driver that may have been cut short mid-exchange, discard it instead.

        Raises:
            ConflictError, StorageError: the COMMIT failed (the connection is discarded).
        """
        if error is not None and not isinstance(error, Exception) and self._engine.dialect.name != "sqlite":
            self._discard()
            return
        try:
            self._finish(commit=error is None)
        except database_errors() as failure:
            raise map_error(failure) from failure

    def _finish(self, *, commit: bool) -> None:
        """Commit or roll back, then let the connection go; if that fails or is cut short, discard it."""
        raw = self._raw
        if raw is None:  # nothing was begun
            self._discard()
            return
        connection = raw.connection
        try:
            if commit:
                connection.commit()
            else:
                connection.rollback()
        except BaseException:
            self._discard()
            raise
        if self._hot is None or not self._hot.give_back(self, broken=False):
            connection.close()

    def _discard(self) -> None:
        """Let the connection go closed, its state unknown; what was given back already is left alone."""
        if self._hot is not None and self._hot.give_back(self, broken=True):
            return
        connection = self._raw.connection if self._raw is not None else None
        if connection is not None and connection.dbapi_connection is not None:  # still checked out
            connection.invalidate()  # closes it and tells the pool, which opens another when needed


def reconnect_on(engine: Engine) -> Callable[[BaseException, Any, Any], Any]:
    """What `Raw` asks for a fresh connection in place of one its first statement found lost:
    another from `engine`'s pool, or None when the error was not a lost connection."""

    def reconnect(error: BaseException, cursor: Any, connection: Any) -> Any:
        if not isinstance(error, database_errors()):
            return None
        if not engine.dialect.is_disconnect(error, connection.dbapi_connection, cursor):  # type: ignore[arg-type]
            return None
        connection.invalidate()
        return engine.raw_connection()

    return reconnect


# The store scopes whose transaction() a thread (sync) or task (async) holds open, each with that
# holder: a call on such a store from its holder would wait for its own transaction (SQLite's
# write lock, a PostgreSQL row lock), so it is refused at once instead. One set for the process,
# keyed by the holder, rather than a context variable: a task created inside the block inherits
# its creator's context but is another task, and a mark is added and removed by one call each, so
# an interrupt cannot leave one behind.
_OPEN: set[tuple[Scope, object]] = set()


def _holder() -> object:
    """The running task, or the thread when no event loop runs in it."""
    asyncio = sys.modules.get("asyncio")  # not imported: no loop runs, and a sync store need not load it
    try:
        task = asyncio.current_task() if asyncio is not None else None
    except RuntimeError:  # no running loop: a sync caller
        task = None
    return task if task is not None else threading.get_ident()


def refuse_inside_transaction(scope: Scope) -> None:
    """Refuse a call on `scope`'s store if this thread or task holds its transaction open.

    Raises:
        UsageError: it does.
    """
    if _OPEN and (scope, _holder()) in _OPEN:  # most calls find no transaction open at all
        raise UsageError(
            "This thread (or task) has a transaction of this store open: a call on the store itself, or a "
            "nested store.transaction(), would wait for that transaction. Use the transaction's repositories "
            "inside transaction() (tx.threads, tx.messages, ...), or call the store after the block."
        )


@contextmanager
def held_open(scope: Scope) -> Iterator[None]:
    """Mark `scope`'s transaction as held open by this thread or task for the block."""
    held = (scope, _holder())
    try:
        _OPEN.add(held)
        yield
    finally:
        _OPEN.discard(held)


class TransactionScope(Scope):
    """Every read and write joins one caller-owned unit of work, until the unit ends."""

    def __init__(self, raw: Raw, clock: Clock) -> None:
        super().__init__(clock, raw.dialect.name)
        self._raw: Raw | None = raw

    def end(self) -> None:
        """The unit has ended: a later call on its repositories is refused."""
        self._raw = None

    @contextmanager
    def read(self) -> Iterator[Raw]:
        raw = self._raw
        if raw is None:
            raise UsageError(
                "This transaction has ended (its block is over): use the store, or open another transaction()."
            )
        with translated_errors():
            yield raw

    write = read
