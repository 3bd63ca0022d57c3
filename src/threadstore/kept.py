"""The connections a sync store keeps open for its units of work, lent to one unit at a time.

SQLite file stores keep one (its hot paths: checking a connection out of SQLAlchemy's pool and
back costs about as much as reading a row by its key); PostgreSQL sync stores keep their whole
pool here (`pool_size` kept open, up to `max_overflow` more while busy, `pool_timeout` to wait).

Why not SQLAlchemy's pool: a signal handler may raise (KeyboardInterrupt, a request timeout)
between any two bytecodes, and QueuePool keeps its queue and counters under `threading.Condition`
and `with lock:`, Python code that an interrupt can cut short with the lock taken or a checkout
counted that never happened. Here every change of who holds a connection is one atomic call:

- a unit takes slot i by `holders.setdefault(i, holder)`, where `holder` is a weak reference to
  the unit; whenever an interrupt lands, the unit either holds a slot or does not, and finds out
  which by looking (`give_back` looks for it);
- a unit dropped without having ended (an interrupt kept its `__exit__` from running) lets its slot
  go, its connection closed, when it is collected (the weak reference's callback); a release cut
  short, or a callback that was (an exception in one is only printed), is finished by the next
  taker that finds the holder dead;
- callers that wait are served in arrival order, as `fair_pool.FairQueue` serves tasks: a
  newcomer takes a free slot only when no one waits, and each release wakes the first in line.
  The wake-up is a lock released; a waiter also looks again every `_POLL` seconds, so a wake-up
  lost to an interrupt costs at most that.

The connections come from a pool without a queue (NullPool) with the engine's connect settings and
events, so they hold no slot of the engine's own pool, which migrations and the schema check use.
A forked child starts without them, as it starts without its parent's pooled connections.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, Pool, QueuePool, StaticPool

_POLL = 0.05  # seconds: how long a waiter trusts its wake-up before it looks again


class KeptConnections:
    """`size` connections kept open for units of work, each lent to one unit at a time.

    With `timeout` None, a unit that finds every one lent gets None at once (SQLite: it then uses
    the engine's pool); else it waits in turn up to `timeout` seconds. A connection that `busy`
    finds not at rest when lent (PostgreSQL: left inside a transaction) is replaced. Slots from
    `idle` on close their connection when given back (the pool's overflow); a connection older
    than `recycle` seconds (if positive) is replaced when lent.
    """

    def __init__(
        self,
        engine: Engine,
        size: int,
        *,
        timeout: float | None = None,
        idle: int | None = None,
        recycle: float = -1,
        busy: Callable[[Any], bool] | None = None,
    ) -> None:
        self._pool = _own_pool(engine)
        self.size = size
        self.timeout = timeout
        self.idle = size if idle is None else idle
        self._recycle = recycle
        self._busy = busy
        self._connections: list[Any] = [None] * size  # slot → its open connection, or None
        self._opened: list[float] = [0.0] * size  # slot → when its connection was opened (monotonic)
        self._holders: dict[int, _Holder] = {}  # slot → the unit (or closer) holding it
        self._waiters: deque[weakref.ref[_Waiter]] = deque()  # in arrival order
        self._dropped = self._when_dropped  # one bound method for every take
        _kept.add(self)

    def take(self, unit: object, *, spans_calls: bool = False) -> Any:
        """A connection, now `unit`'s until `give_back`; None when every one is lent and this pool
        does not wait. A unit `spans_calls` (a transaction's) if its thread may make other calls
        while it is open (AsyncStore's worker threads do).

        Raises:
            sqlalchemy.exc.TimeoutError: none came free within the timeout.
        """
        holder = _Holder(unit, self._dropped)
        holder.spans_calls = spans_calls
        if not self._holders and not self._waiters and self._holders.setdefault(0, holder) is holder:
            return self._lend(0)  # the usual case: nothing lent, no one waiting
        own = self._own(holder.thread)
        if own is not None and not own[1].spans_calls:
            # This thread's own earlier unit of one call holds a connection: an interrupt kept it
            # from its end (as its __exit__ was called), perhaps with its transaction open, and
            # something keeps it alive (a reference cycle, the frames of a traceback that an
            # exception hook saved). A unit of one call never outlives its call, and this thread
            # has moved on: its connection is taken back, rolled back.
            self._release(*own, broken=True)
        slot = self._claim(holder) if not self._waiters or self._first_in_line() is None else None
        if slot is None and own is not None and own[1].spans_calls:
            # A transaction's unit of this thread holds one: one dropped unfinished in a reference
            # cycle lets go when collected; collected now, not at some later collection while
            # every taker waits for it (a transaction still open keeps it, and we look elsewhere).
            self._let_go_of_the_dropped()
            slot = self._claim(holder) if self._first_in_line() is None else None
        if slot is None:
            if self.timeout is None:
                return None
            slot = self._wait(holder)
        return self._lend(slot)

    def give_back(self, unit: object, *, broken: bool) -> bool:
        """End `unit`'s use of its connection, if it holds one, and say whether it did; a `broken`
        connection (its state unknown: its COMMIT or ROLLBACK failed or was cut short) is closed,
        and the next taker of its slot opens another."""
        for slot in range(self.size):
            holder = self._holders.get(slot)
            if holder is not None and holder() is unit:
                self._release(slot, holder, broken=broken)
                return True
        return False

    def replace(self, connection: Any) -> Any:
        """A fresh connection in place of `connection`, one of ours that was found lost, for the
        unit that holds it; None if `connection` is not one of ours."""
        for slot in range(self.size):
            if self._connections[slot] is connection:
                self._connections[slot] = None  # first: cut short from here on, the slot opens anew
                let_go(connection)
                return self._lend(slot)
        return None

    def lent(self) -> int:
        """How many connections are lent (held by units, living or not yet collected)."""
        return len(self._holders)

    def close(self) -> None:
        """Close every connection, waiting for the units using them to finish."""
        closing = _Closing()
        closer = _Holder(closing)
        waited = False
        for slot in range(self.size):
            while (found := self._holders.setdefault(slot, closer)) is not closer:
                if found() is None or (found.thread == closer.thread and not found.spans_calls):
                    # a release cut short, or this thread's unit of one call, which never
                    # outlives its call (see take): let it go
                    self._release(slot, found, broken=True)
                    continue
                if not waited:  # a unit dropped unfinished in a reference cycle lets go when collected
                    self._let_go_of_the_dropped()
                    waited = True
                time.sleep(0.001)
            try:
                connection, self._connections[slot] = self._connections[slot], None
                if connection is not None:
                    connection.close()
            finally:
                del self._holders[slot]
        self._pool.dispose()

    def forget(self) -> None:
        """In a forked child: drop the parent's connections. They are kept referenced, never
        closed or reset here: they are the parent's."""
        _parents_connections.extend(c for c in self._connections if c is not None)
        self._connections = [None] * self.size
        self._holders = {}
        self._waiters = deque()
        self._pool = self._pool.recreate()

    def _claim(self, holder: _Holder) -> int | None:
        """The first free slot, now `holder`'s, or None."""
        for slot in range(self.size):
            found = self._holders.setdefault(slot, holder)
            if found is holder:
                return slot
            if found() is None:  # its unit is gone and its release was cut short: finish it, try again
                self._release(slot, found, broken=True)
                if self._holders.setdefault(slot, holder) is holder:
                    return slot
        return None

    def _lend(self, slot: int) -> Any:
        """The open connection of a slot the caller holds, opened (or replaced) as needed."""
        connection = self._connections[slot]
        if connection is not None and (
            connection.dbapi_connection is None  # let go by a release cut short
            or (self._busy is not None and self._busy(connection.dbapi_connection))
            or (self._recycle > 0 and time.monotonic() - self._opened[slot] > self._recycle)
        ):
            self._connections[slot] = None
            let_go(connection)
            connection = None
        if connection is None:
            self._opened[slot] = time.monotonic()
            connection = self._connections[slot] = self._pool.connect()
        return connection

    def _wait(self, holder: _Holder) -> int:
        """Wait in turn for a slot, now `holder`'s.

        Raises:
            sqlalchemy.exc.TimeoutError: none came free within the timeout.
        """
        assert self.timeout is not None
        waiter = _Waiter()
        entry = weakref.ref(waiter)  # a waiter cut short on its way out is skipped once it is gone
        self._waiters.append(entry)
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                if self._first_in_line() is entry:
                    slot = self._claim(holder)
                    if slot is not None:
                        return slot
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise exc.TimeoutError(
                        f"All {self.size} connections stayed in use for pool_timeout ({self.timeout} s)."
                    )
                waiter.wake_up.acquire(timeout=min(remaining, _POLL))
        finally:
            _remove(self._waiters, entry)
            self._wake_first()  # the next in line may find a slot free

    def _first_in_line(self) -> weakref.ref[_Waiter] | None:
        """The entry of the caller that has waited longest, or None when no one waits."""
        while self._waiters:
            try:
                first = self._waiters[0]
            except IndexError:
                return None
            if first() is not None:
                return first
            _remove(self._waiters, first)
        return None

    def _wake_first(self) -> None:
        first = self._first_in_line()
        waiter = first() if first is not None else None
        if waiter is not None:
            waiter.wake()

    def _own(self, thread: int) -> tuple[int, _Holder] | None:
        """A slot a unit of `thread` holds, and its holder."""
        for slot in range(self.size):
            holder = self._holders.get(slot)
            if holder is not None and holder.thread == thread:
                return slot, holder
        return None

    def _let_go_of_the_dropped(self) -> None:
        """Collect the units dropped unfinished; finish a release that an interrupt cut short."""
        gc.collect()
        for slot in range(self.size):
            found = self._holders.get(slot)
            if found is not None and found() is None:
                self._release(slot, found, broken=True)

    def _when_dropped(self, holder: _Holder) -> None:
        """A unit was collected while holding a connection: it may have left a transaction open."""
        for slot in range(self.size):
            if self._holders.get(slot) is holder:
                self._release(slot, holder, broken=True)
                return

    def _release(self, slot: int, holder: _Holder, *, broken: bool) -> None:
        if self._holders.get(slot) is not holder:
            return
        connection = self._connections[slot]
        if connection is not None and (broken or slot >= self.idle):
            # First, while the holder stays recorded: cut short here, the release is finished by
            # the next taker (and `_lend` replaces a connection let go).
            if broken:
                let_go(connection)
            else:
                connection.close()
            self._connections[slot] = None
        del self._holders[slot]
        if self._waiters:
            self._wake_first()


def kept_connections(engine: Engine, busy: Callable[[Any], bool] | None = None) -> KeptConnections | None:
    """The connections a sync store on `engine` keeps: SQLite's one for its hot paths, or the whole
    pool of PostgreSQL, sized as the engine's QueuePool is (pool_size, max_overflow, pool_timeout,
    pool_recycle). None where the engine's own pool serves: in-memory SQLite (its one shared
    connection), an async engine's pool (AsyncStore: its callers wait on the event loop, see
    fair_pool), or a pool the caller chose in engine_options that is not a bounded QueuePool.
    On PostgreSQL the engine's pool is replaced by one that keeps no connection idle."""
    pool: Any = engine.pool
    if engine.dialect.name == "sqlite":
        return None if isinstance(pool, StaticPool) else KeptConnections(engine, 1)
    if engine.dialect.is_async or type(pool) is not QueuePool or pool._max_overflow < 0:
        return None
    size = pool.size() + pool._max_overflow
    kept = KeptConnections(engine, size, timeout=pool.timeout(), idle=pool.size(), recycle=pool._recycle, busy=busy)
    # The kept connections are the store's pool now: the engine's own opens one only for the rare
    # work outside units of work (the schema check, migrations) and keeps none idle beside them.
    engine.pool = _own_pool(engine)
    pool.dispose()
    return kept


def let_go(connection: Any) -> None:
    """Close a connection whose state is unknown (a unit cut short or dropped held it) so that no
    transaction stays open. SQLite's is rolled back first: sqlite3 runs each call to its end before
    a signal is handled, so a rollback is safe, and closing alone ends nothing while a statement of
    the unit's cursor lives (sqlite3_close_v2 leaves a "zombie" that keeps its locks until its last
    statement is finalized: a unit kept alive by a saved traceback held the write lock so).
    PostgreSQL's is closed as it is: psycopg may be half-way through an exchange, and the server
    rolls back a closed session."""
    dbapi_connection = connection.dbapi_connection
    if dbapi_connection is None:  # let go already
        return
    if isinstance(dbapi_connection, sqlite3.Connection):
        with suppress(sqlite3.Error):
            dbapi_connection.rollback()
    connection.invalidate()


def _own_pool(engine: Engine) -> Pool:
    """A pool without a queue, with the engine's connect settings (its events), for the kept connections."""
    pool: Any = engine.pool
    return NullPool(
        pool._creator, reset_on_return=pool._reset_on_return, _dispatch=pool.dispatch, dialect=pool._dialect
    )


def _remove(waiters: deque[weakref.ref[_Waiter]], entry: weakref.ref[_Waiter]) -> None:
    with suppress(ValueError):  # another caller removed it first
        waiters.remove(entry)


class _Holder(weakref.ref):  # type: ignore[type-arg]
    """A weak reference to the unit (or closer) holding a slot, its thread, and whether the unit
    spans calls (a transaction's)."""

    __slots__ = ("spans_calls", "thread")

    def __init__(self, holder: object, callback: Any = None) -> None:  # weakref.ref.__new__ takes both
        self.thread = threading.get_ident()
        self.spans_calls = False


class _Waiter:
    """A caller waiting for a slot; `wake_up` is released to wake it."""

    __slots__ = ("__weakref__", "wake_up")

    def __init__(self) -> None:
        self.wake_up = threading.Lock()
        self.wake_up.acquire()

    def wake(self) -> None:
        with suppress(RuntimeError):  # woken already, and not yet waiting again
            self.wake_up.release()


class _Closing:
    """What holds the slots while the store closes them."""


_kept: weakref.WeakSet[KeptConnections] = weakref.WeakSet()
_parents_connections: list[Any] = []


def _forget_parent_connections() -> None:
    for kept in list(_kept):
        kept.forget()


os.register_at_fork(after_in_child=_forget_parent_connections)
