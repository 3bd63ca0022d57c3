"""Where a repository gets its executor. Repositories never open, commit or roll back.

Every repository call runs its statements on one executor (`fastsql.Raw`) inside one kind of
unit of work (`RawUnit`): a Store's repositories open a unit per call (`EngineScope`); the
repositories of a `transaction()` share that transaction's unit (`TransactionScope`), and the
transaction alone commits or rolls back.
"""

from __future__ import annotations

import inspect
import opcode
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import FrameType
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from threadstore.clock import Clock, unix_micros, unix_seconds
from threadstore.db import database_errors, is_busy, map_error, translated_errors
from threadstore.errors import ReadOnlyError, UsageError
from threadstore.events import log
from threadstore.events.wakeups import Wakeups
from threadstore.fastsql import Raw, interrupt_behind
from threadstore.kept import KeptConnections, kept_connections, let_go


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
        # SQLite keeps one connection for its hot paths, PostgreSQL its pool (see kept.py; a
        # connection the server dropped is replaced by RawUnit's first statement).
        self._kept = kept_connections(engine, busy=None if engine.dialect.name == "sqlite" else is_busy)
        self._reconnect = None if engine.dialect.name == "sqlite" else reconnect_on(engine, self._kept)
        self._read_only = read_only

    def read(self) -> RawUnit:
        refuse_inside_transaction(self)
        self._ready()
        return RawUnit(self._engine, self._kept, "BEGIN", self._events, self._reconnect)

    def write(self, *, spans_calls: bool = False) -> RawUnit:
        """A unit of work for writing; one that `spans_calls` is a transaction's (see RawUnit).

        Raises:
            ReadOnlyError: the store was opened with ``read_only=True``; nothing is sent.
            UsageError: this thread or task holds the store's transaction open.
        """
        if self._read_only:
            raise ReadOnlyError("This store was opened with read_only=True: it writes nothing.")
        refuse_inside_transaction(self)
        self._ready()
        return RawUnit(self._engine, self._kept, "BEGIN IMMEDIATE", self._events, self._reconnect, spans_calls)

    def close(self) -> None:
        """Stop listening for events, and close the kept connections once no one uses them."""
        self.wakeups.close()
        if self._kept is not None:
            self._kept.close()

    def lent(self) -> int:
        """How many of the kept connections units hold (0 where the engine's pool serves)."""
        return 0 if self._kept is None else self._kept.lent()


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
    fails or is cut short is discarded (kept.let_go); a unit whose `__exit__` never ran (an
    interrupt that lands as `__exit__` is called) lets its connection go when it is collected:
    SQLAlchemy's pool takes back a pooled one, rolled back, and the kept connections (kept.py)
    close one they lent, or sooner, when its thread makes its next call: a unit of one call never
    outlives its call, nor does a sync transaction's (its thread's calls on the store are refused
    while it is open), unlike an AsyncStore transaction's, which `spans_calls`. Written as a class
    rather than a generator because it runs on every call.
    """

    __slots__ = ("__weakref__", "_begin", "_engine", "_events", "_kept", "_raw", "_reconnect", "_spans_calls")

    def __init__(
        self,
        engine: Engine,
        kept: KeptConnections | None,
        begin: str,
        events: bool = True,
        reconnect: Any = None,
        spans_calls: bool = False,
    ) -> None:
        self._engine = engine
        self._kept = kept
        self._spans_calls = spans_calls
        self._events = events
        self._begin = begin if engine.dialect.name == "sqlite" else None
        self._reconnect = reconnect
        self._raw: Raw | None = None

    def __enter__(self) -> Raw:
        try:
            connection = self._kept.take(self, spans_calls=self._spans_calls) if self._kept is not None else None
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
        if error is not None and isinstance(error, database_errors()):
            raise map_error(error) from error

    def _end(self, error: BaseException | None) -> None:
        """Commit (no `error`) or roll back, then let the connection go; after an interrupt, on a
        driver that may have been cut short mid-exchange, discard it instead.

        Raises:
            ConflictError, StorageError: the COMMIT failed (the connection is discarded).
        """
        if error is not None and self._engine.dialect.name != "sqlite" and _interrupted(error):
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
            if not commit:
                raw.close_cursor()
                connection.rollback()
            elif self._begin is None:  # PostgreSQL
                connection.commit()
            else:
                # SQLite: the COMMIT of the cursor's statement cache, if a transaction is open (as
                # sqlite3's commit() checks); commit() compiles the statement anew on every call.
                cursor = raw.cursor()
                if cursor.connection.in_transaction:
                    cursor.execute("COMMIT")
        except BaseException:
            self._discard()
            raise
        if self._kept is None or not self._kept.give_back(self, broken=False):
            # Back to the engine's pool (AsyncStore's, in-memory SQLite's) without the pool's
            # rollback-on-return: the transaction has just ended, and that rollback (a call
            # into the driver, on AsyncStore a switch to the event loop and back) cost 4-5% of
            # a read. What SQLAlchemy's own Connection does when it has ended its transaction.
            connection._close_special(transaction_reset=True)

    def _discard(self) -> None:
        """Let the connection go closed, its state unknown; what was given back already is left alone."""
        if self._kept is not None and self._kept.give_back(self, broken=True):
            return
        if self._raw is not None:
            let_go(self._raw.connection)  # closes it and tells the pool, which opens another when needed


def _interrupted(error: BaseException | None) -> bool:
    """Whether `error` is an interrupt (a BaseException that is not an Exception) or was raised
    while one was handled: psycopg cut short inside a pipeline (executemany) reports its own
    failure to leave it, with the interrupt as its context, and leaves the connection unfit."""
    return interrupt_behind(error) is not None


def reconnect_on(engine: Engine, kept: KeptConnections | None) -> Callable[[BaseException, Any, Any], Any]:
    """What `Raw` asks for a fresh connection in place of one its first statement found lost:
    another in its kept slot, or from `engine`'s pool, or None when the error was not a lost
    connection."""

    def reconnect(error: BaseException, cursor: Any, connection: Any) -> Any:
        if not isinstance(error, database_errors()):
            return None
        if not engine.dialect.is_disconnect(error, connection.dbapi_connection, cursor):  # type: ignore[arg-type]
            return None
        fresh = kept.replace(connection) if kept is not None else None
        if fresh is not None:
            return fresh
        connection.invalidate()
        return engine.raw_connection()

    return reconnect


# The store scopes whose transaction() a thread (sync) or task (async) holds open, each with that
# holder: a call on such a store from its holder would wait for its own transaction (SQLite's
# write lock, a PostgreSQL row lock), so it is refused at once instead. One dict for the process,
# keyed by the holder, rather than a context variable: a task created inside the block inherits
# its creator's context but is another task. The value is the frame whose `with` block holds a
# sync transaction open (None for a task's): see refuse_inside_transaction.
_OPEN: dict[tuple[Scope, object], FrameType | None] = {}
_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
_BEFORE_WITH = opcode.opmap.get("BEFORE_WITH", -1)  # the instruction a `with` statement enters by


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

    A mark whose block is over is let go instead: an interrupt that lands as a block's `__exit__`
    is called (where Python handles a signal that arrived while an exception unwound the block)
    keeps the end from running at all. A plain function's frame that is no longer on this thread's
    stack has returned or raised out of its `with` block; a generator's may be suspended inside
    it, and its mark stands.

    Raises:
        UsageError: it does.
    """
    if not _OPEN:  # most calls find no transaction open at all
        return
    held = (scope, _holder())
    if held not in _OPEN:
        return
    frame = _OPEN[held]
    if frame is not None and not frame.f_code.co_flags & _SUSPENDABLE and not _on_stack(frame):
        _OPEN.pop(held, None)
        return
    raise UsageError(
        "This thread (or task) has a transaction of this store open: a call on the store itself, or a "
        "nested store.transaction(), would wait for that transaction. Use the transaction's repositories "
        "inside transaction() (tx.threads, tx.messages, ...), or call the store after the block."
    )


def _on_stack(frame: FrameType) -> bool:
    caller: FrameType | None = sys._getframe()
    while caller is not None:
        if caller is frame:
            return True
        caller = caller.f_back
    return False


def hold_open(scope: Scope, frame: FrameType | None = None) -> tuple[Scope, object]:
    """Mark `scope`'s transaction as held open by this thread or task; return the mark, for
    `let_go_open`. `frame`: the caller of the transaction's `__enter__`, kept only if a `with`
    statement of its own entered it: a block entered otherwise (contextlib.ExitStack, a call of
    `__enter__`) outlives the frame that entered it, and its mark is never judged over."""
    held = (scope, _holder())
    _OPEN[held] = frame if frame is not None and frame.f_code.co_code[frame.f_lasti] == _BEFORE_WITH else None
    return held


def let_go_open(held: tuple[Scope, object]) -> None:
    """Unmark a transaction marked by `hold_open`."""
    _OPEN.pop(held, None)


@contextmanager
def held_open(scope: Scope) -> Iterator[None]:
    """Mark `scope`'s transaction as held open by this thread or task for the block."""
    held = hold_open(scope)
    try:
        yield
    finally:
        let_go_open(held)


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
