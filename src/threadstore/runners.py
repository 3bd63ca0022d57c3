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
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
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

    The hand-off is kept to what crossing threads needs, through pipes rather than locks: the call
    goes into a deque and one byte into a pipe the worker blocks reading; its outcome goes into a
    deque of the caller's event loop and one byte into a pipe that loop watches, whose callback
    settles the futures the callers await. Writing or reading a pipe lets go of the GIL while the
    other thread wakes, so the woken thread runs at once: a call that does nothing takes half the
    time it took through a `SimpleQueue` and `call_soon_threadsafe` (README, "AsyncStore"). SQLite
    takes one writer at a time, so a single worker loses nothing to a pool of them, except while a
    write waits for the lock that another connection holds: the calls behind it wait too. A
    transaction's calls run on a worker of its own (`apart`), or a call of the store waiting for
    the transaction's lock would keep the transaction from ever reaching its end.
    """

    def __init__(self) -> None:
        self._worker: _Worker | None = None  # started at the first call
        self._returns_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Returns | _ThreadsafeReturns]
        self._returns_by_loop = weakref.WeakKeyDictionary()
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
        loop = asyncio.get_running_loop()
        returns = self._returns_to(loop)
        future: asyncio.Future[T] = loop.create_future()
        worker = self._worker if self._worker is not None else self._start()
        worker.hand((future, function, args, kwargs, returns))
        return future

    def _start(self) -> _Worker:
        """Start the worker, at the first call: a store opened before a fork starts its own in the child."""
        worker = self._worker = _Worker()
        return worker

    def _returns_to(self, loop: asyncio.AbstractEventLoop) -> _Returns | _ThreadsafeReturns:
        """Where the outcomes of calls made on `loop` go: one way back to each loop, kept while the
        loop lives, so that calls of two loops each find theirs (and a loop's calls still under way
        when another loop calls are not stranded)."""
        returns = self._returns_by_loop.get(loop)
        if returns is None:
            returns = self._returns_by_loop[loop] = _new_returns(loop)
        return returns

    def forget(self) -> None:
        """In a forked child: the parent's workers do not run here; the next call starts one."""
        self._worker = None
        self._returns_by_loop = weakref.WeakKeyDictionary()
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
        if self._worker is not None:
            self._worker.stop()
        while self._spares:
            self._spares.pop().close()
        for returns in self._returns_by_loop.values():
            returns.close()
        self._returns_by_loop.clear()  # their pipes close once their loops have let go of them


_runners: weakref.WeakSet[ThreadRunner] = weakref.WeakSet()


def _forget_parents_workers() -> None:
    for runner in list(_runners):
        runner.forget()


os.register_at_fork(after_in_child=_forget_parents_workers)


class _Pipe:
    """A pipe that carries wake-ups: each byte means "look at the deque", nothing more.

    Its two descriptors are closed when nothing holds the pipe any more (a worker that ended, a
    loop that no longer watches it), never before: a descriptor closed while another thread may
    still write to it could be reused by an unrelated file meanwhile.
    """

    def __init__(self, *, blocking_read: bool) -> None:
        self.read, self._write = os.pipe()
        os.set_blocking(self.read, blocking_read)
        os.set_blocking(self._write, False)  # a full pipe holds wake-ups enough: never wait to add one
        weakref.finalize(self, _close_descriptors, self.read, self._write)

    def wake(self) -> None:
        """Add a wake-up for the reader."""
        try:  # noqa: SIM105 (every call passes here twice: no context manager's cost)
            os.write(self._write, b"\0")
        except BlockingIOError:  # full: the reader has wake-ups waiting, and looks at the deque after them
            pass

    def wait(self) -> None:
        """Block until there are wake-ups, and take them all (the reader's side, blocking)."""
        os.read(self.read, _WAKE_UPS)

    def take(self) -> None:
        """Take the wake-ups there are (the reader's side, not blocking)."""
        try:  # noqa: SIM105 (as in wake)
            os.read(self.read, _WAKE_UPS)
        except BlockingIOError:  # none (a wake-up whose outcome an earlier callback settled)
            pass


# A pipe's capacity on Linux: one read takes every wake-up waiting (any left over wakes the reader
# once more, to find nothing new).
_WAKE_UPS = 65536


def _close_descriptors(*descriptors: int) -> None:
    for descriptor in descriptors:
        os.close(descriptor)


class _Worker:
    """A thread that runs the jobs handed to it, in turn, until it is stopped."""

    def __init__(self) -> None:
        self._jobs: deque[_Job | None] = deque()
        self._pipe = _Pipe(blocking_read=True)
        self._thread = threading.Thread(target=_work, args=(self._jobs, self._pipe), name="threadstore", daemon=True)
        self._thread.start()

    def hand(self, job: _Job | None) -> None:
        """Queue `job` (None: stop) and wake the worker. The job goes in before the wake-up, which the worker reads
        before it looks at the jobs: whichever way the two threads interleave, no job is left waiting."""
        self._jobs.append(job)
        self._pipe.wake()

    def stop(self) -> None:
        """Let the worker run the jobs handed to it, then end it."""
        self.hand(None)
        self._thread.join()


def _work(jobs: deque[_Job | None], pipe: _Pipe) -> None:
    """A worker thread: run each job handed to it, in turn, until told to stop (None)."""
    while True:
        pipe.wait()
        while jobs:
            job = jobs.popleft()
            if job is None:
                return
            _run(job)


class _Returns:
    """Outcomes going back to one event loop: a deque, and a pipe the loop watches, whose callback
    settles the futures of the outcomes that came."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch a new pipe on `loop`.

        Raises:
            NotImplementedError: `loop` cannot watch a pipe (Windows' proactor loop).
        """
        self.loop = weakref.ref(loop)  # not the loop itself: a loop closed and dropped is let go of
        self._outcomes: deque[_Outcome] = deque()
        self._pipe = _Pipe(blocking_read=False)
        loop.add_reader(self._pipe.read, self._settle)

    def put(self, outcome: _Outcome) -> None:
        """In the worker: hand `outcome` to the loop (its future is settled there)."""
        self._outcomes.append(outcome)
        self._pipe.wake()

    def _settle(self) -> None:
        """On the loop: settle the future of every outcome that came. The wake-ups are taken first: the
        worker wrote each after its outcome, so none is taken whose outcome is not settled now."""
        self._pipe.take()
        while self._outcomes:
            settle, future, value = self._outcomes.popleft()
            settle(future, value)

    def close(self) -> None:
        """Stop watching the pipe, on the loop's own thread (the pipe closes once nothing holds it)."""
        loop = self.loop()
        if loop is None or loop.is_closed():
            return  # its selector, and what it watched, went with it
        if _running_loop() is loop:
            loop.remove_reader(self._pipe.read)
        else:
            with suppress(RuntimeError):  # closed meanwhile
                loop.call_soon_threadsafe(loop.remove_reader, self._pipe.read)


class _ThreadsafeReturns:
    """Outcomes going back to a loop that cannot watch a pipe, each with `call_soon_threadsafe`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)

    def put(self, outcome: _Outcome) -> None:
        """In the worker: hand `outcome` to the loop (its future is settled there)."""
        settle, future, value = outcome
        loop = self.loop()
        if loop is None:
            return  # the loop is gone: no one is waiting any more
        with suppress(RuntimeError):  # the loop has closed: likewise
            loop.call_soon_threadsafe(settle, future, value)

    def close(self) -> None:
        """Nothing to let go of."""


def _new_returns(loop: asyncio.AbstractEventLoop) -> _Returns | _ThreadsafeReturns:
    """Where the outcomes of calls made on `loop` go: a watched pipe, or, where the loop cannot watch one,
    `call_soon_threadsafe`."""
    try:
        return _Returns(loop)
    except NotImplementedError:
        return _ThreadsafeReturns(loop)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


# A call for a worker: the future its caller awaits, the function, its arguments, where its outcome goes.
_Job = tuple[
    "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any], "_Returns | _ThreadsafeReturns"
]
# An outcome: how to settle the future (with a result or an error), the future, the result or error.
_Outcome = tuple[Callable[["asyncio.Future[Any]", Any], None], "asyncio.Future[Any]", Any]


def _run(job: _Job) -> None:
    """Run the call of `job` and hand its outcome back to the loop of its future."""
    future, function, args, kwargs, returns = job
    if future.cancelled():  # cancelled while it waited its turn: never started, as in an executor
        return
    settle: Callable[[asyncio.Future[Any], Any], None]
    try:
        outcome = function(*args, **kwargs)
    except BaseException as error:
        settle, outcome = _fail, error
    else:
        settle = _succeed
    returns.put((settle, future, outcome))


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # the awaiting task may have been cancelled meanwhile
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
