"""How AsyncStore runs the store's one (synchronous) repository code without blocking the loop.

PostgreSQL: in a greenlet (`sqlalchemy.util.greenlet_spawn`, what `AsyncConnection.run_sync` is
built on) over psycopg's async connections. The repository code calls the executor as always;
each DBAPI call of SQLAlchemy's async adapter awaits psycopg's coroutine by switching back to the
event loop, so the loop runs other tasks while a statement is on the network. No thread per call.

SQLite: in a thread of the store's own pool, the whole call at once. sqlite3 does its I/O in
the calling thread, and one hop per call costs less than one per statement (as aiosqlite does).
A write waits for SQLite's lock in its thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from queue import SimpleQueue
from typing import Any, ParamSpec, Protocol, TypeVar

from threadstore.errors import StorageError

P = ParamSpec("P")
T = TypeVar("T")


class Runner(Protocol):
    """Runs one synchronous call of the store's code without blocking the event loop."""

    async def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `function(*args, **kwargs)` and return what it returns (or raise what it raises)."""
        ...

    def close(self) -> None:
        """Let go of what the runner holds."""
        ...


class GreenletRunner:
    """Runs calls in greenlets whose database calls await the async driver (PostgreSQL)."""

    async def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        from sqlalchemy.util import greenlet_spawn

        # A partial: greenlet_spawn's own keyword (_require_await) must not meet the call's.
        result: T = await greenlet_spawn(functools.partial(function, *args, **kwargs))
        return result

    def close(self) -> None:
        """Nothing to let go of."""


class ThreadRunner:
    """Runs calls in a pool of threads of the store's own (SQLite).

    Several threads, so that a call waiting for SQLite's write lock (held by an open
    transaction of another task) does not hold up the calls that would let it go. A call goes
    to the thread that finished last (its caches, and the core it ran on, are still warm):
    measured on SQLite, that costs about half the overhead of `run_in_executor`, which hands
    each call to whichever thread the OS wakes and wraps a concurrent future in an asyncio one.
    """

    def __init__(self, threads: int) -> None:
        self._most = threads
        self._lock = threading.Lock()  # held only to move a job or a worker between the lists
        self._idle: list[_Worker] = []  # last in, first out: the warmest thread on top
        self._backlog: deque[_Job] = deque()
        self._workers: list[_Worker] = []
        self._closed = False

    async def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._submit((loop, future, functools.partial(function, *args, **kwargs)))
        return await future

    def _submit(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise StorageError("The store is closed.")
            if self._idle:
                self._idle.pop().inbox.put(job)
            elif len(self._workers) < self._most:
                self._workers.append(_Worker(self, job))
            else:
                self._backlog.append(job)

    def _next(self, worker: _Worker) -> _Job | None:
        """The job for `worker`, which has finished one: from the backlog, or the next given it."""
        with self._lock:
            if self._backlog:
                return self._backlog.popleft()
            if self._closed:
                return None
            self._idle.append(worker)
        return worker.inbox.get()

    def close(self) -> None:
        """Wait for the calls under way, then end the threads."""
        with self._lock:
            self._closed = True
            for worker in self._idle:
                worker.inbox.put(None)
            self._idle.clear()
        for worker in self._workers:
            worker.thread.join()


# A call for a worker thread: the loop to answer on, the future it awaits, the call itself.
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class _Worker:
    """One thread of a ThreadRunner, given its jobs one at a time through its inbox."""

    def __init__(self, runner: ThreadRunner, first: _Job) -> None:
        self.inbox: SimpleQueue[_Job | None] = SimpleQueue()
        self.inbox.put(first)
        self._runner = runner
        self.thread = threading.Thread(target=self._work, name="threadstore", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        job = self.inbox.get()
        while job is not None:
            _run(job)
            job = self._runner._next(self)


def _run(job: _Job) -> None:
    """Run the call of `job` and hand its outcome to the awaiting future, on its loop."""
    loop, future, call = job
    if future.cancelled():  # cancelled while it waited for a thread: never started, as in an executor
        return
    try:
        result = call()
    except BaseException as error:
        _answer(loop, _fail, future, error)
    else:
        _answer(loop, _succeed, future, result)


def _answer(loop: asyncio.AbstractEventLoop, settle: Callable[[Any, Any], None], future: Any, value: Any) -> None:
    with suppress(RuntimeError):  # the loop has closed: no one is waiting any more
        loop.call_soon_threadsafe(settle, future, value)


def _succeed(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():  # the awaiting task may have been cancelled meanwhile
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
