"""The connection pool of AsyncStore on PostgreSQL: SQLAlchemy's async pool, first come first served.

SQLAlchemy's async pool queue wakes the caller that has waited longest when a connection comes
back, but before that caller runs, one that has just arrived may take the connection without
waiting; the robbed caller then waits again, behind every newer one. With more tasks than
connections (100 tasks on 20 connections in benchmarks.asyncio_ops) a call waited 27 s, and
another reached the pool's timeout, while connections changed hands every few milliseconds. Here a
connection coming back while callers wait is handed to the first of them directly, as
psycopg_pool does, and a newcomer waits behind them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty


class FairQueue(AsyncAdaptedQueue[Any]):
    """SQLAlchemy's async pool queue, where callers that wait are served in arrival order."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def put_nowait(self, item: Any) -> None:
        """Hand `item` to the caller that has waited longest, or keep it for the next."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a caller that gave up (cancelled, timed out) is skipped
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """A connection: at once if one is free and no one is waiting, else in turn.

        Raises:
            Empty: none came within `timeout` seconds (the pool raises its TimeoutError).
        """
        if not self._waiters:
            try:
                return self.get_nowait()
            except Empty:
                if not block:
                    raise
        elif not block:
            raise Empty()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await_(self._wait(waiter, timeout))
        except TimeoutError as error:
            raise Empty() from error

    async def _wait(self, waiter: asyncio.Future[Any], timeout: float | None) -> Any:
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException:  # cancelled or timed out: a connection handed over meanwhile goes on
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())
            else:
                waiter.cancel()
            raise


class FairAsyncPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's async queue pool (same arguments) over a `FairQueue`."""

    _queue_class = FairQueue
