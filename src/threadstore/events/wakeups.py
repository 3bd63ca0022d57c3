"""When a follower should read again: as soon as new events may have committed.

One thread per store watches for commits, started by the first follow, and each sign of one wakes
every follower of the store, sync or async:

- PostgreSQL: every event's INSERT also sends `NOTIFY threadstore_events` (delivered when its
  transaction commits; see events.log), and the thread listens on a connection of its own. While
  that connection is down, followers read every interval until it is back.
- SQLite has no notifications: the thread asks its own connection for `PRAGMA data_version`,
  which changes when any other connection (of this process or another) commits, every interval
  of the most eager follower waiting. One probe serves every follower of the store.

Followers also read every `FALLBACK` seconds whatever they are told, so a wake-up lost in between
delays them, never stalls them. An in-memory SQLite store (one connection) has no probe: its
followers read every interval.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import Counter
from contextlib import closing, suppress

from sqlalchemy.engine import URL

CHANNEL = "threadstore_events"
LISTEN_SLICE = 0.25  # seconds the listener waits before it looks whether the store has closed
FALLBACK = 1.0  # seconds a follower waits at most, told of a commit or not


class Wakeups:
    """The wake-ups of one store's followers.

    Args:
        url: the store's database: a PostgreSQL one is listened to, a SQLite file is probed;
            None (or in-memory SQLite): followers read every interval.
    """

    def __init__(self, url: URL | None = None) -> None:
        self._url = url
        self._condition = threading.Condition()
        self._generation = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._intervals: Counter[float] = Counter()  # of the followers waiting now
        self._thread: threading.Thread | None = None
        self._watching = False  # whether the thread can tell of commits now
        self._closed = False

    def generation(self) -> int:
        """A number that changes when new events may have committed; read it before reading events."""
        self._start()
        return self._generation

    def wait(self, generation: int, interval: float) -> None:
        """Block until the generation has moved past `generation`, or for `interval` seconds when
        nothing watches for commits (else at most `FALLBACK`)."""
        with self._condition:
            self._waiting(interval)
            try:
                self._condition.wait_for(
                    lambda: self._generation != generation or self._closed, self._patience(interval)
                )
            finally:
                self._done(interval)

    async def wait_async(self, generation: int, interval: float) -> None:
        """`wait` for a coroutine: the event loop runs other tasks meanwhile."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._condition:
            if self._generation != generation or self._closed:
                return
            self._waiters.add(waiter)
            self._waiting(interval)
            patience = self._patience(interval)
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(waiter[1].wait(), patience)
        finally:
            with self._condition:
                self._waiters.discard(waiter)
                self._done(interval)

    def close(self) -> None:
        """Stop watching and wake every follower."""
        with self._condition:
            self._closed = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=2 * LISTEN_SLICE + 1)

    def _patience(self, interval: float) -> float:
        return max(interval, FALLBACK) if self._watching else interval

    def _waiting(self, interval: float) -> None:
        """Count a follower's interval among those waiting (the probe's pace); under the lock."""
        self._intervals[interval] += 1
        self._condition.notify_all()

    def _done(self, interval: float) -> None:
        self._intervals[interval] -= 1
        if not self._intervals[interval]:
            del self._intervals[interval]

    def _start(self) -> None:
        if self._url is None or self._thread is not None:
            return
        watch = self._listen if self._url.get_backend_name() == "postgresql" else self._probe
        with self._condition:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=watch, name="threadstore-wakeups", daemon=True)
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
                    self._watching = True
                    self._wake()  # what committed while no one listened is read now
                    while not self._closed:
                        for _ in connection.notifies(timeout=LISTEN_SLICE):
                            self._wake()
            except psycopg.Error:
                self._watching = False
                self._wake()  # followers poll until we are back
                time.sleep(LISTEN_SLICE)

    def _probe(self) -> None:
        assert self._url is not None and self._url.database
        try:
            connection = sqlite3.connect(f"file:{self._url.database}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error:
            return  # followers read every interval, as without a probe
        with closing(connection):
            seen = connection.execute("PRAGMA data_version").fetchone()[0]
            self._watching = True
            while True:
                with self._condition:
                    self._condition.wait_for(lambda: self._intervals or self._closed)
                    if self._closed:
                        return
                    self._condition.wait(min(self._intervals))  # woken early by a close
                try:
                    version = connection.execute("PRAGMA data_version").fetchone()[0]
                except sqlite3.Error:
                    self._watching = False
                    self._wake()
                    return
                if version != seen:
                    seen = version
                    self._wake()
