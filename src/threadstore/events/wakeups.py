"""When a follower should read again: at once when new events may have committed, else after
its interval.

PostgreSQL: every event's INSERT also sends `NOTIFY threadstore_events` (delivered when its
transaction commits; see events.log). One connection per store listens, in a thread of its own,
started by the first follow; each notification wakes every follower of the store, sync or async.
If that connection drops, followers go on reading every interval until it is back. SQLite has
no notifications: followers read every interval (a read of the index, much cheaper than the
interval).
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import suppress

from sqlalchemy.engine import URL

CHANNEL = "threadstore_events"
LISTEN_SLICE = 0.25  # seconds the listener waits before it looks whether the store has closed


class Wakeups:
    """The wake-ups of one store's followers. With no `url` (SQLite), only the interval wakes them."""

    def __init__(self, url: URL | None = None) -> None:
        self._url = url
        self._condition = threading.Condition()
        self._generation = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._thread: threading.Thread | None = None
        self._closed = False

    def generation(self) -> int:
        """A number that changes when new events may have committed; read it before reading events."""
        self._start()
        return self._generation

    def wait(self, generation: int, timeout: float) -> None:
        """Block until the generation has moved past `generation`, or for `timeout` seconds."""
        with self._condition:
            self._condition.wait_for(lambda: self._generation != generation or self._closed, timeout)

    async def wait_async(self, generation: int, timeout: float) -> None:
        """`wait` for a coroutine: the event loop runs other tasks meanwhile."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._condition:
            if self._generation != generation or self._closed:
                return
            self._waiters.add(waiter)
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(waiter[1].wait(), timeout)
        finally:
            with self._condition:
                self._waiters.discard(waiter)

    def close(self) -> None:
        """Stop listening and wake every follower."""
        with self._condition:
            self._closed = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=2 * LISTEN_SLICE + 1)

    def _start(self) -> None:
        if self._url is None or self._thread is not None:
            return
        with self._condition:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._listen, name="threadstore-listen", daemon=True)
                self._thread.start()

    def _wake(self) -> None:
        with self._condition:
            self._generation += 1
            self._condition.notify_all()
            waiters = list(self._waiters)
        for loop, event in waiters:
            with suppress(RuntimeError):  # its loop has closed
                loop.call_soon_threadsafe(event.set)

    def _listen(self) -> None:
        import psycopg

        assert self._url is not None
        conninfo = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._closed:
            try:
                with psycopg.connect(conninfo, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self._wake()  # what committed while no one listened is read now
                    while not self._closed:
                        for _ in connection.notifies(timeout=LISTEN_SLICE):
                            self._wake()
            except psycopg.Error:
                time.sleep(LISTEN_SLICE)  # the server dropped us: followers poll until we are back
