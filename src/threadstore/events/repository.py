"""`store.events`: reading the stream of a thread, a run or every thread, oldest first, from a cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from threadstore.errors import ValidationError, shown
from threadstore.events import log
from threadstore.events.api import Event
from threadstore.events.cursors import cursor
from threadstore.events.follow import Follower
from threadstore.events.models import events
from threadstore.events.wakeups import Wakeups
from threadstore.fastsql import ONE, Shapes, Statement, one_of
from threadstore.langgraph.models import runs as langgraph_runs
from threadstore.langgraph.states import RUN as LANGGRAPH_RUN
from threadstore.openai.models import runs as openai_runs
from threadstore.openai.states import RUN as OPENAI_RUN
from threadstore.responses.models import responses
from threadstore.responses.states import RESPONSE
from threadstore.scope import Scope
from threadstore.validation import check_int, check_optional_string

MAX_LIMIT = 1000


def _thread_of_run() -> sa.ScalarSelect[Any]:
    """The thread of the run in parameter `run_id`, whichever family's: events have no index of
    their own by run (events.models), so a run's are read through its thread's."""
    run_id: sa.BindParameter[str] = sa.bindparam("run_id", type_=sa.String)
    threads = sa.union_all(
        sa.select(openai_runs.c.thread_id).where(openai_runs.c.id == run_id),
        sa.select(langgraph_runs.c.thread_id).where(langgraph_runs.c.run_id == run_id),
        sa.select(responses.c.id).where(responses.c.id == run_id),  # a response is its own thread
    )
    return sa.select(threads.subquery().c.thread_id).limit(ONE).scalar_subquery()


def _build(shape: tuple[bool, bool, bool, bool]) -> Any:
    by_thread, by_run, after, upto = shape
    thread: sa.ColumnElement[Any] | None = (
        sa.bindparam("thread_id", type_=sa.String) if by_thread else _thread_of_run() if by_run else None
    )
    conditions = [
        *([events.c.thread_id == thread] if thread is not None else []),
        *([events.c.run_id == sa.bindparam("run_id")] if by_run else []),
        *([events.c.id > sa.bindparam("after", type_=sa.BigInteger)] if after else []),
        *([events.c.id <= sa.bindparam("upto", type_=sa.BigInteger)] if upto else []),
    ]
    return sa.select(events).where(*conditions).order_by(events.c.id).limit(sa.bindparam("limit", type_=sa.Integer))


_LISTS = Shapes(_build)

# Every thread's events on PostgreSQL: once no writer holds the shared lock (events.log), every id
# up to the highest has committed or rolled back.
_ORDER_LOCK = Statement(
    sa.select(ONE).select_from(
        sa.select(sa.func.pg_advisory_xact_lock(sa.literal_column(str(log.ORDER_LOCK))).label("locked")).subquery()
    )
)
_HIGHEST = Statement(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0).label("highest")))


def _prune() -> Statement:
    ended = sa.union_all(
        sa.select(openai_runs.c.id).where(one_of(openai_runs.c.status, sorted(OPENAI_RUN.terminal))),
        sa.select(langgraph_runs.c.run_id).where(one_of(langgraph_runs.c.status, sorted(LANGGRAPH_RUN.terminal))),
        sa.select(responses.c.id).where(one_of(responses.c.status, sorted(RESPONSE.terminal))),
    )
    doomed = (
        sa.select(events.c.id)
        .where(events.c.created_at < sa.bindparam("before", type_=sa.BigInteger), events.c.run_id.in_(ended))
        .order_by(events.c.id)
        .limit(sa.bindparam("batch", type_=sa.Integer))
    )
    return Statement(sa.delete(events).where(events.c.id.in_(doomed.scalar_subquery())))


_PRUNE = _prune()


class Events:
    """The events of every change, in the order followers must see them."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def list(
        self,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """The events after the cursor, oldest first, of a thread, of a run, or of every thread.

        Args:
            thread_id: only this thread's events.
            run_id: only this run's events.
            after: an event's id: only the events after it (None: from the first).
            limit: at most this many, 1 to 1000.

        Raises:
            ValidationError: a bad id, cursor or limit.
        """
        params: dict[str, Any] = {"limit": check_int("limit", limit, minimum=1, maximum=MAX_LIMIT)}
        thread = check_optional_string("thread_id", thread_id)
        run = check_optional_string("run_id", run_id)
        position = cursor(after)
        for name, value in (("thread_id", thread), ("run_id", run), ("after", position)):
            if value is not None:
                params[name] = value
        if thread is None and run is None and self._scope.dialect == "postgresql":
            params["upto"] = self._committed_up_to()
        shape = (thread is not None, run is not None, position is not None, "upto" in params)
        with self._scope.read() as raw:
            return [Event.from_row(row) for row in raw.rows(_LISTS[shape], params)]

    def _committed_up_to(self) -> int:
        """The highest event id below which no event is still to commit (PostgreSQL, where ids of
        different threads may commit out of order): the lock waits for the writers in flight."""
        with self._scope.read() as raw:
            raw.execute(_ORDER_LOCK)
            highest = raw.first(_HIGHEST)
        assert highest is not None
        return int(highest["highest"])

    def follow(
        self,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        after: str | None = None,
        timeout: float | None = None,
        interval: float | None = None,
    ) -> Iterator[Event]:
        """The events of a thread, of a run or of every thread after the cursor, oldest first:
        those already written, then each new one as it commits, read every `interval` seconds
        while nothing is new. The follow of a run ends after the run's last event (its end), even
        one long past.

        Args:
            thread_id: only this thread's events.
            run_id: only this run's events (it ends with the run).
            after: an event's id: the events after it (None: from the first).
            timeout: end the follow after this many seconds without a new event (None: never).
            interval: seconds between reads while nothing is new (default 0.05).

        Raises:
            ValidationError: a bad argument.
        """
        follower = Follower(thread_id, run_id, after, timeout, interval)
        while not follower.over:
            generation = self.wakeups.generation()  # before the read: a commit after it wakes us
            batch = self._batch(follower)
            yield from follower.take(batch)
            if not follower.over and len(batch) < MAX_LIMIT:
                self.wakeups.wait(generation, follower.interval)

    def _batch(self, follower: Follower) -> Sequence[Event]:
        """The next events a follow reads, in one unit: what its sync and async loops share."""
        return self.list(thread_id=follower.thread_id, run_id=follower.run_id, after=follower.after, limit=MAX_LIMIT)

    @property
    def wakeups(self) -> Wakeups:
        """What tells this store's followers to read again."""
        return self._scope.wakeups

    def prune(self, *, older_than: timedelta, batch: int = 1000) -> int:
        """Delete the events of ended runs (OpenAI and LangGraph) and ended responses written more
        than `older_than` ago, `batch` at a time, each batch its own unit of work so that writers
        are never held up for long; return how many were deleted. Events of runs still going, and a thread's
        own events (those of no run), stay until their thread or run is deleted.

        Args:
            older_than: how old an event must be, by the store's clock.
            batch: how many events one unit of work deletes, 1 to 100,000.

        Raises:
            ValidationError: `older_than` is not a non-negative timedelta, or a bad batch.
        """
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ValidationError(f"older_than must be a timedelta of at least zero, not {shown(older_than)}.")
        size = check_int("batch", batch, minimum=1, maximum=100_000)
        params = {"before": self._scope.now() - int(older_than.total_seconds()), "batch": size}
        deleted = 0
        while True:
            with self._scope.write() as raw:
                count = raw.rowcount(_PRUNE, params)
            deleted += count
            if count < size:
                return deleted
