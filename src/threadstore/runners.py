"""How AsyncStore runs the store's one (synchronous) repository code without blocking the loop.

PostgreSQL: in a greenlet (`sqlalchemy.util.greenlet_spawn`, what `AsyncConnection.run_sync` is
built on) over psycopg's async connections. The repository code calls the executor as always;
each DBAPI call of SQLAlchemy's async adapter awaits psycopg's coroutine by switching back to the
event loop, so the loop runs other tasks while a statement is on the network. No thread per call.

SQLite: in a worker thread of the store's own, the whole call (its whole unit of work) in one
hand-off. sqlite3 does its I/O in the calling thread, and one hand-off per call costs less than
one per statement (which is what aiosqlite does). A write waits for SQLite's lock in the worker,
never on the loop.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from queue import SimpleQueue
from typing import Any, ParamSpec, Protocol, TypeVar

from threadstore.errors import StorageError

P = ParamSpec("P")
T = TypeVar("T")


class Runner(Protocol):
    """Runs one synchronous call of the store's code without blocking the event loop."""

    def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """Start `function(*args, **kwargs)`; awaited, it returns what that returns (or raises what it raises)."""
        ...

    def apart(self) -> AbstractContextManager[Runner]:
        """A runner for one transaction's calls, which must never wait behind the store's other calls."""
        ...

    def close(self) -> None:
        """Let go of what the runner holds."""
        ...


class GreenletRunner:
    """Runs calls in greenlets whose database calls await the async driver (PostgreSQL)."""

    def __init__(self) -> None:
        from sqlalchemy.util import greenlet_spawn  # greenlet is loaded for PostgreSQL stores only

        self._spawn = greenlet_spawn

    def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        # A partial: greenlet_spawn's own keyword (_require_await) must not meet the call's.
        spawned: Awaitable[T] = self._spawn(functools.partial(function, *args, **kwargs))
        return spawned

    @contextmanager
    def apart(self) -> Iterator[GreenletRunner]:
        """Itself: each call is a greenlet of its own, and none waits behind another."""
        yield self

    def close(self) -> None:
        """Nothing to let go of."""


class ThreadRunner:
    """Runs calls in one worker thread of its own, one after another, in the order they come (SQLite).

    The hand-off is kept to what crossing threads needs: the call goes into a `SimpleQueue` the
    worker waits on; its outcome comes back to the loop with one `call_soon_threadsafe`, settling
    the asyncio future the caller awaits (no `concurrent.futures` future, no executor, no lock:
    the one worker serialises the calls). SQLite takes one writer at a time, so a single worker
    loses nothing to a pool of them, except while a write waits for the lock that another
    connection holds: the calls behind it wait too. A transaction's calls run on a worker of its
    own (`apart`), or a call of the store waiting for the transaction's lock would keep the
    transaction from ever reaching its end.
    """

    def __init__(self) -> None:
        self._inbox: SimpleQueue[_Job | None] | None = None  # with its worker, on the first call
        self._thread: threading.Thread | None = None
        self._spares: list[ThreadRunner] = []  # transactions' workers, idle, kept for the next ones
        self._closed = False
        _runners.add(self)

    def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Hand `function(*args, **kwargs)` to the worker; the future settles with its outcome.

        Raises:
            StorageError: the store is closed.
        """
        if self._closed:
            raise StorageError("The store is closed.")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        inbox = self._inbox if self._inbox is not None else self._start()
        inbox.put((future, function, args, kwargs))
        return future

    def _start(self) -> SimpleQueue[_Job | None]:
        """Start the worker, at the first call: a store opened before a fork starts its own in the child."""
        inbox = self._inbox = SimpleQueue()
        self._thread = threading.Thread(target=_work, args=(inbox,), name="threadstore", daemon=True)
        self._thread.start()
        return inbox

    def forget(self) -> None:
        """In a forked child: the parent's workers do not run here; the next call starts one."""
        self._inbox = self._thread = None
        self._spares = []

    @contextmanager
    def apart(self) -> Iterator[ThreadRunner]:
        """A worker of its own for one transaction: an idle one kept from an earlier transaction, or a new one.

        Raises:
            StorageError: the store is closed.
        """
        if self._closed:
            raise StorageError("The store is closed.")
        try:
            runner = self._spares.pop()
        except IndexError:
            runner = ThreadRunner()
        try:
            yield runner
        finally:
            if self._closed:
                runner.close()
            else:
                self._spares.append(runner)

    def close(self) -> None:
        """Let the worker finish the calls handed to it, then end it (and the transactions' idle workers)."""
        self._closed = True
        if self._inbox is not None and self._thread is not None:
            self._inbox.put(None)
            self._thread.join()
        while self._spares:
            self._spares.pop().close()


_runners: weakref.WeakSet[ThreadRunner] = weakref.WeakSet()


def _forget_parents_workers() -> None:
    for runner in list(_runners):
        runner.forget()


os.register_at_fork(after_in_child=_forget_parents_workers)


# A call for a worker: the future its caller awaits, the function, its arguments.
_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _work(inbox: SimpleQueue[_Job | None]) -> None:
    """A worker thread: run each job handed to it, in turn, until told to stop (None)."""
    while (job := inbox.get()) is not None:
        _run(job)


def _run(job: _Job) -> None:
    """Run the call of `job` and hand its outcome to the awaiting future, on the future's loop."""
    future, function, args, kwargs = job
    if future.cancelled():  # cancelled while it waited its turn: never started, as in an executor
        return
    settle: Callable[[asyncio.Future[Any], Any], None]
    try:
        outcome = function(*args, **kwargs)
    except BaseException as error:
        settle, outcome = _fail, error
    else:
        settle = _succeed
    with suppress(RuntimeError):  # the loop has closed: no one is waiting any more
        future.get_loop().call_soon_threadsafe(settle, future, outcome)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # the awaiting task may have been cancelled meanwhile
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
