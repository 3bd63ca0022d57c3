"""Where a repository gets its connection. Repositories never open, commit or roll back.

A Store's repositories run each call as its own unit of work (`EngineScope`); the repositories
of a `transaction()` share that transaction's connection (`ConnectionScope`), and the
transaction alone commits or rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy.engine import Connection, Engine

from threadstore.clock import Clock, unix_micros, unix_seconds
from threadstore.db import translated_errors, unit_of_work


class Scope:
    """The connection and clock a repository works with."""

    def __init__(self, clock: Clock, dialect: str) -> None:
        self.clock = clock
        self.dialect = dialect

    def now(self) -> int:
        """The store clock's current time in Unix seconds."""
        return unix_seconds(self.clock())

    def now_micros(self) -> int:
        """The store clock's current time in Unix microseconds."""
        return unix_micros(self.clock())

    def read(self) -> AbstractContextManager[Connection]:
        """A connection for reading."""
        raise NotImplementedError

    def write(self) -> AbstractContextManager[Connection]:
        """A connection for writing (on SQLite, under BEGIN IMMEDIATE)."""
        raise NotImplementedError


class EngineScope(Scope):
    """Each read or write is its own transaction, committed when it succeeds."""

    def __init__(self, engine: Engine, clock: Clock, ready: Callable[[], None]) -> None:
        super().__init__(clock, engine.dialect.name)
        self._engine = engine
        self._ready = ready

    @contextmanager
    def read(self) -> Iterator[Connection]:
        self._ready()
        with unit_of_work(self._engine, write=False) as connection:
            yield connection

    @contextmanager
    def write(self) -> Iterator[Connection]:
        self._ready()
        with unit_of_work(self._engine, write=True) as connection:
            yield connection


class ConnectionScope(Scope):
    """Every read and write joins one caller-owned transaction."""

    def __init__(self, connection: Connection, clock: Clock) -> None:
        super().__init__(clock, connection.dialect.name)
        self._connection = connection

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with translated_errors():
            yield self._connection

    write = read
