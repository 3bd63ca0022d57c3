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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, Protocol, TypeVar

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
    transaction of another task) does not hold up the calls that would let it go.
    """

    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="threadstore")

    async def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        call = functools.partial(function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        """Wait for the calls under way, then end the threads."""
        self._pool.shutdown(wait=True)
