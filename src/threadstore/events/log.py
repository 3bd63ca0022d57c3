"""The one writer of events. transitions.py calls it for every create and status move, in the
unit of work of the change, so that a change and its event commit together or not at all.

Each family says how its objects stream (a `Stream`, registered per table by openai/streams.py
and langgraph/streams.py): the events a create or a move writes, and their data.

The events of a unit of work are written together when it commits (`flush`, called by the unit).

Order. A follower reads a thread's (or run's) events in id order and never re-reads below its
cursor, so a thread's ids must be handed out in the order its events commit. SQLite has one
writer at a time, so they are. On PostgreSQL ids come from a sequence, whose values are not
commit-ordered: each INSERT first takes a transaction-scoped advisory lock on its thread, so two
transactions writing events of one thread take their ids one after the other, the second only
once the first has committed or rolled back. Transactions of different threads do not wait for
each other, so across threads ids may commit out of order: before taking its thread's lock, each
INSERT also takes a shared lock (`ORDER_LOCK`) that a reader of every thread's events takes
exclusively for a moment to learn the highest id below which every event has committed (see
events.repository). Shared holders never wait for each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from threadstore.events.models import events
from threadstore.events.wakeups import CHANNEL
from threadstore.fastsql import Raw, Shapes, Statement, dumps, multi_row_insert
from threadstore.records import Json

Row = Mapping[str, Any]

ORDER_LOCK = 0x74687264736576  # "thrdsev": an advisory lock key of threadstore's own


class ApiObject(Protocol):
    """An API value object (openai.api): a Named stream's events carry its `to_api()`."""

    def to_api(self) -> Json:
        """The object as the API shows it."""
        ...


class Stream(Protocol):
    """How the objects of one table stream: the events each create and each move writes."""

    @property
    def thread(self) -> str:
        """The row's column that holds the thread id."""
        ...

    @property
    def run(self) -> str | None:
        """The row's column that holds the run id, if the object belongs to a run."""
        ...

    @property
    def unit(self) -> int:
        """How many ticks of the family's clock make a second (1, or 1,000,000 for microseconds)."""
        ...

    def on_create(self, raw: Raw, row: Row, built: ApiObject | None) -> list[tuple[str, Json]]:
        """The events (name, data) of an object just created as `row`; `built` is its API object
        when the caller has built it already (for its answer), or None."""
        ...

    def on_move(self, raw: Raw, row: Row, built: ApiObject | None) -> list[tuple[str, Json]]:
        """The events (name, data) of an object just moved to `row` (`built` as for on_create)."""
        ...


@dataclass(frozen=True)
class Named:
    """A stream named as the Assistants API's: `<prefix>.created`, then `<prefix>.<status>`.

    Attributes:
        prefix: the events' names before the status: `thread.run` gives `thread.run.created`,
            `thread.run.queued`, ...
        build: the API object from the unit's executor and its row; the event's data is its
            `to_api()`. A caller that has built it already passes it instead (`built`).
        thread: the row's column that holds the thread id.
        run: the row's column that holds the run id, if the object belongs to one.
        announced: the statuses whose event follows `<prefix>.created` when an object is created
            in them (a run's `queued`, an in-progress message's `in_progress`).
        statuses: whether moves write `<prefix>.<status>` (a thread has no status).
    """

    prefix: str
    build: Callable[[Raw, Row], ApiObject]
    thread: str
    run: str | None = None
    announced: frozenset[str] = field(default_factory=frozenset)
    statuses: bool = True
    unit: int = 1

    def on_create(self, raw: Raw, row: Row, built: ApiObject | None) -> list[tuple[str, Json]]:
        data = self._data(raw, row, built)
        announce = self.statuses and row["status"] in self.announced
        return [(f"{self.prefix}.created", data), *([(f"{self.prefix}.{row['status']}", data)] if announce else [])]

    def on_move(self, raw: Raw, row: Row, built: ApiObject | None) -> list[tuple[str, Json]]:
        return [(f"{self.prefix}.{row['status']}", self._data(raw, row, built))] if self.statuses else []

    def _data(self, raw: Raw, row: Row, built: ApiObject | None) -> Json:
        return (self.build(raw, row) if built is None else built).to_api()


STREAMS: dict[str, Stream] = {}


def register(table: sa.Table, stream: Stream) -> None:
    """Stream the objects of `table` as `stream` says."""
    STREAMS[table.name] = stream


# A pending event (Raw.pending) is a tuple of its column values in this order, the INSERTs' order.
_COLUMNS = ("event", "data", "thread_id", "run_id", "created_at")
# SQLite's smallest limit on one statement's parameters (before 3.32) over the values of an event.
_MOST = 999 // len(_COLUMNS)


def _postgres_insert() -> Statement:
    params: dict[str, sa.BindParameter[Any]] = {
        "event": sa.bindparam("event", type_=sa.String),
        "data": sa.bindparam("data", type_=sa.String),  # JSON text, encoded when the event was added
        "thread_id": sa.bindparam("thread_id", type_=sa.String),
        "run_id": sa.bindparam("run_id", type_=sa.String),
        "created_at": sa.bindparam("created_at", type_=sa.BigInteger),
    }
    # The locks are taken in the FROM clause, so before the sequence gives the row its id, the
    # shared one first (a writer that held a thread's lock while it queued for the shared one behind a
    # reader of every thread would close a cycle); the
    # notification goes out when the transaction commits (events.wakeups listens for it).
    lock = sa.select(
        sa.func.pg_advisory_xact_lock_shared(sa.literal_column(str(ORDER_LOCK))).label("ordered"),
        sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(params["thread_id"], 0)).label("locked"),
        sa.func.pg_notify(sa.literal_column(f"'{CHANNEL}'"), params["thread_id"]).label("notified"),
    ).subquery()
    values = [sa.cast(params["data"], postgresql.JSONB) if name == "data" else value for name, value in params.items()]
    return Statement(sa.insert(events).from_select(list(params), sa.select(*values).select_from(lock)))


_POSTGRES_INSERT = _postgres_insert()


def _sqlite_insert(count: int) -> sa.Insert:
    """One INSERT of `count` events, their values event after event (one statement: sqlite3 steps
    a statement once per row of an executemany, which costs a third of an event's own insert)."""
    types = {name: sa.String() if name == "data" else events.c[name].type for name in _COLUMNS}  # data: JSON text
    return multi_row_insert(events, _COLUMNS, count, types)


_SQLITE_INSERTS = Shapes(_sqlite_insert)


def append(raw: Raw, name: str, data: Json, thread_id: str, run_id: str | None, now: int) -> None:
    """Add one event to the unit of `raw` (nothing when the store writes no events). Its data is
    taken (encoded) now; the row is written by `flush`, when the unit commits."""
    if raw.events:
        # None stays SQL NULL, as a JSON column writes it (the column refuses it, as before)
        _add(raw, name, None if data is None else dumps(data), thread_id, run_id, now)


def _add(raw: Raw, name: str, text: str | None, thread_id: str, run_id: str | None, now: int) -> None:
    raw.pending.append((name, text, thread_id, run_id, now))


def flush(raw: Raw) -> None:
    """Write the unit's events, in the order they were added, just before it commits.

    Last, so that on PostgreSQL a unit takes its threads' event locks after every row lock it
    needs, and holds them only while it commits: no two units wait for each other through them.
    """
    if not raw.pending:
        return
    pending, raw.pending = raw.pending, []
    if raw.dialect.name == "postgresql":
        rows = [dict(zip(_COLUMNS, event, strict=True)) for event in pending]
        if len(rows) == 1:  # most units write one event: one statement, without executemany's pipeline
            raw.execute(_POSTGRES_INSERT, rows[0])
        else:
            raw.execute_many(_POSTGRES_INSERT, rows)
        return
    if len(pending) == 1:
        raw.execute_values(_SQLITE_INSERTS[1], pending[0])
        return
    for start in range(0, len(pending), _MOST):
        batch = pending[start : start + _MOST]
        raw.execute_values(_SQLITE_INSERTS[len(batch)], [value for event in batch for value in event])


def created(raw: Raw, table: sa.Table, rows: Sequence[Row], now: int, built: Sequence[ApiObject] | None = None) -> None:
    """The events of objects just created in `table`, at `now` (the family's clock). `built`: the
    API objects of `rows`, one each, when the caller has built them already (built once, not twice)."""
    _write(raw, table, rows, now, built, created=True)


def moved(raw: Raw, table: sa.Table, rows: Sequence[Row], now: int, built: Sequence[ApiObject] | None = None) -> None:
    """The events of objects just moved in `table`, at `now` (the family's clock); `built` as for `created`."""
    _write(raw, table, rows, now, built, created=False)


def _write(
    raw: Raw, table: sa.Table, rows: Sequence[Row], now: int, built: Sequence[ApiObject] | None, *, created: bool
) -> None:
    stream = STREAMS.get(table.name)
    if stream is None or not raw.events:
        return
    events, at, run = stream.on_create if created else stream.on_move, now // stream.unit, stream.run
    for index, row in enumerate(rows):
        thread_id, run_id = row[stream.thread], None if run is None else row[run]
        last: object = _NOTHING
        for name, data in events(raw, row, None if built is None else built[index]):
            if data is not last:  # an object created in a status it announces: one data, encoded once
                last, text = data, dumps(data)
            raw.pending.append((name, text, thread_id, run_id, at))


_NOTHING = object()


_FORGET_THREAD = Statement(sa.delete(events).where(events.c.thread_id == sa.bindparam("thread_id")))
# Through the thread's index: events have none by run (events.models).
_FORGET_RUN = Statement(
    sa.delete(events).where(events.c.thread_id == sa.bindparam("thread_id"), events.c.run_id == sa.bindparam("run_id"))
)


def forget_thread(raw: Raw, thread_id: str) -> None:
    """Delete a thread's events, with the thread, in its unit of work (those not yet written too)."""
    raw.pending = [event for event in raw.pending if event[2] != thread_id]
    raw.execute(_FORGET_THREAD, {"thread_id": thread_id})


def forget_run(raw: Raw, thread_id: str, run_id: str) -> None:
    """Delete the events of a run of `thread_id`, with the run, in its unit of work (those not yet
    written too)."""
    raw.pending = [event for event in raw.pending if event[3] != run_id]
    raw.execute(_FORGET_RUN, {"thread_id": thread_id, "run_id": run_id})
