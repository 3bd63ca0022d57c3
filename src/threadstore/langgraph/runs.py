"""The LangGraph runs repository: multitask strategies on create, leased claims fenced by an
attempt number, and the thread status derived in every transaction that changes a run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from threadstore.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from threadstore.events import log
from threadstore.fastsql import ONE, Raw, Shapes, Statement, insert, one_of, word
from threadstore.ids import new_uuid
from threadstore.langgraph.api import LangGraphRun
from threadstore.langgraph.models import ORDER, runs, threads
from threadstore.langgraph.states import (
    BUSY_RUN_STATUSES,
    CANCEL_ACTIONS,
    FINISH_STATUSES,
    MULTITASK_STRATEGIES,
    RUN,
    RUN_STATUSES,
)
from threadstore.langgraph.streams import RESERVED
from threadstore.langgraph.threads import ROWS as THREADS
from threadstore.leases import (
    DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS,
    check_max_attempts,
    lease_micros,
    stale,
)
from threadstore.ordering import next_in_order
from threadstore.rows import Rows
from threadstore.scope import Scope
from threadstore.transitions import Bulk, create, move, move_all, refresh_thread_status, refused
from threadstore.types import CancelAction, FinishStatus, LangGraphRunStatus, MultitaskStrategy
from threadstore.validation import check_choice, check_int, check_json, check_json_object, check_string, check_uuid

KIND = "langgraph run"
RunList = list[LangGraphRun]

ROWS = Rows(runs, KIND, key="run_id", parent="thread_id")
_INSERT = insert(runs, computed={ORDER.name: next_in_order(ORDER)})
_THREAD_ID = sa.bindparam("thread_id", type_=sa.String)
_NOW = sa.bindparam("now", type_=sa.BigInteger)
_BUSY = one_of(runs.c.status, sorted(BUSY_RUN_STATUSES))
# Statuses are written into the SQL, never bound: SQLite prepares a statement anew on every call
# when a bound value decides whether a partial index (the one running run per thread) applies.
_RUNNING = one_of(runs.c.status, ["running"])

# Every write that changes a run and its thread locks the thread first, the order claims use
# too, so that two writers never wait for each other's locks in a cycle (a deadlock on PostgreSQL).
_LOCK_THREAD = Statement(sa.select(threads.c.thread_id).where(threads.c.thread_id == _THREAD_ID).with_for_update())
_LOCK_THREAD_OF_RUN = Statement(
    sa.select(threads.c.thread_id)
    .where(
        threads.c.thread_id
        == sa.select(runs.c.thread_id).where(runs.c.run_id == sa.bindparam("run_id")).scalar_subquery()
    )
    .with_for_update()
)
_STALE = (_RUNNING, runs.c.lease_expires_at <= _NOW)
_LOCK_STALE_THREADS = Statement(
    sa.select(threads.c.thread_id)
    .where(threads.c.thread_id.in_(sa.select(runs.c.thread_id).where(*_STALE)))
    .order_by(threads.c.thread_id)
    .with_for_update()
)
_BUSY_RUNS = Statement(sa.select(runs.c.run_id).where(runs.c.thread_id == _THREAD_ID, _BUSY))
_ROLLBACK = Statement(sa.delete(runs).where(runs.c.thread_id == _THREAD_ID, _BUSY).returning(runs.c.run_id))
_INTERRUPT = Bulk(runs, RUN, "interrupt", where=[runs.c.thread_id == _THREAD_ID])
_FENCE = Statement(sa.select(runs.c.status, runs.c.attempt).where(runs.c.run_id == sa.bindparam("run_id")))
_HEARTBEAT = Statement(
    sa.update(runs)
    .where(runs.c.run_id == sa.bindparam("run_id"), _RUNNING, runs.c.attempt == sa.bindparam("attempt"))
    .values(lease_expires_at=_NOW + sa.bindparam("lease", type_=sa.BigInteger), updated_at=_NOW)
    .returning(*runs.c)
)


def _has_running(thread_id: Any) -> sa.Exists:
    running = sa.alias(runs, "running")
    return sa.exists().where(running.c.thread_id == thread_id, one_of(running.c.status, ["running"]))


def _candidate(passed_over: int) -> sa.Select[Any]:
    """The oldest pending run whose thread has no running run, with its thread locked; threads
    another claimer holds are skipped (FOR UPDATE SKIP LOCKED on PostgreSQL), and so are the
    `passed_over` threads this claim found taken meanwhile."""
    skipped = [sa.bindparam(f"passed_{i}", type_=sa.String) for i in range(passed_over)]
    return (
        sa.select(runs.c.run_id, runs.c.thread_id)
        .join(threads, threads.c.thread_id == runs.c.thread_id)
        .where(
            one_of(runs.c.status, ["pending"]),
            ~_has_running(runs.c.thread_id),
            *([runs.c.thread_id.not_in(skipped)] if skipped else []),
        )
        .order_by(ORDER)
        .limit(ONE)
        .with_for_update(of=threads, skip_locked=True)
    )


_CANDIDATES = Shapes(_candidate)
# The thread is locked by then, so this statement's snapshot holds every committed claim on it:
# a thread that got a running run meanwhile is passed over.
_CLAIM = Bulk(
    runs,
    RUN,
    "claim_next",
    where=[runs.c.run_id == sa.bindparam("run_id"), ~_has_running(_THREAD_ID)],
    values={"attempt": runs.c.attempt + ONE, "lease_expires_at": _NOW + sa.bindparam("lease", type_=sa.BigInteger)},
)
_LIMIT = sa.bindparam("max_attempts", type_=sa.Integer)
_REQUEUE = (
    Bulk(runs, RUN, "requeue_stale", target="error", where=[*_STALE, runs.c.attempt >= _LIMIT]),
    Bulk(runs, RUN, "requeue_stale", target="pending", where=[*_STALE, runs.c.attempt < _LIMIT]),
)


def _list(status: str | None) -> sa.Select[Any]:
    """A thread's runs, of one `status` if given (written into the SQL, as fastsql.one_of says why)."""
    conditions = [runs.c.thread_id == _THREAD_ID]
    if status is not None:
        conditions.append(runs.c.status == word(status))
    return (
        sa.select(runs)
        .where(*conditions)
        .order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .offset(sa.bindparam("offset", type_=sa.Integer))
    )


_LISTS = Shapes(_list)  # by status, or None


def _lock_thread_of(raw: Raw, run_id: str) -> str:
    """Lock the thread of a run; return its id.

    Raises:
        NotFoundError: there is no such run.
    """
    row = raw.first(_LOCK_THREAD_OF_RUN, {"run_id": run_id})
    if row is None:
        raise NotFoundError(KIND, run_id)
    return str(row["thread_id"])


class LangGraphRuns:
    """Create, read, list and delete LangGraph runs; claim, heartbeat, finish, cancel and requeue them.

    Lifecycle: pending → running | interrupted; running → success | error | timeout | interrupted |
    pending (a retry after its lease expired).
    """

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def create(
        self,
        thread_id: str,
        *,
        assistant_id: str,
        kwargs: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        multitask_strategy: MultitaskStrategy = "enqueue",
        run_id: str | None = None,
    ) -> LangGraphRun:
        """Add a pending run to a thread. If the thread already has a pending or running run,
        `multitask_strategy` decides: "reject" (ConflictError, nothing written), "interrupt"
        (those runs become interrupted), "rollback" (those runs are deleted) or "enqueue" (the
        new run waits its turn; the LangGraph API's default).

        Args:
            thread_id: the thread.
            assistant_id: the assistant to run (stored as given; it is not looked up).
            kwargs: the run's arguments (e.g. `input`), any JSON object.
            metadata: any JSON object.
            multitask_strategy: "reject", "interrupt", "rollback" or "enqueue" (the default), as above.
            run_id: the run's UUID; a new one when None.

        Raises:
            ValidationError: bad kwargs, metadata, strategy or run id; nothing is written.
            NotFoundError: the thread does not exist.
            ConflictError: the strategy is "reject" and the thread is busy, or the run id is taken.
        """
        values: dict[str, Any] = {
            "run_id": new_uuid() if run_id is None else check_uuid("run_id", run_id),
            "assistant_id": check_string("assistant_id", assistant_id),
            "kwargs": check_json_object("kwargs", kwargs),
            "metadata": check_json_object("metadata", metadata),
            "multitask_strategy": check_choice("multitask_strategy", multitask_strategy, MULTITASK_STRATEGIES),
        }
        with self._scope.write() as raw:
            # Lock the thread so that two creates on it decide their strategies one after the other.
            if raw.first(_LOCK_THREAD, {"thread_id": thread_id}) is None:
                raise NotFoundError("langgraph thread", thread_id)
            if ROWS.find(raw, values["run_id"]) is not None:
                raise ConflictError(f"Run {values['run_id']} already exists.")  # before any strategy writes
            now = self._scope.now_micros()
            self._apply_strategy(raw, thread_id, values["multitask_strategy"], now)
            values.update(
                thread_id=thread_id,
                created_at=now,
                updated_at=now,
                status=RUN.initial,
                cancel_reason=None,
                attempt=0,
                lease_expires_at=None,
            )
            create(raw, _INSERT, values, now, RUN)
            refresh_thread_status(raw, [thread_id], now)
            return LangGraphRun.from_row(values)

    def _apply_strategy(self, raw: Raw, thread_id: str, strategy: str, now: int) -> None:
        if strategy == "enqueue":
            return
        if strategy == "interrupt":
            move_all(raw, _INTERRUPT, now, {"thread_id": thread_id})
            return
        if strategy == "rollback":
            for row in raw.rows(_ROLLBACK, {"thread_id": thread_id}):
                log.forget_run(raw, thread_id, row["run_id"])  # a deleted run's events go with it
            return
        busy = [row["run_id"] for row in raw.rows(_BUSY_RUNS, {"thread_id": thread_id})]
        if busy:
            raise ConflictError(
                f"Thread {thread_id} has runs in progress ({', '.join(busy)}); the new run was rejected."
            )

    def get(self, run_id: str, *, thread_id: str | None = None) -> LangGraphRun:
        """The run with this id (on this thread, if `thread_id` is given).

        Args:
            run_id: the run.
            thread_id: the thread it must be on, if given.

        Raises:
            NotFoundError: there is none.
        """
        with self._scope.read() as raw:
            return LangGraphRun.from_row(ROWS.get(raw, run_id, thread_id))

    def list(
        self, thread_id: str, *, status: LangGraphRunStatus | None = None, limit: int = 10, offset: int = 0
    ) -> list[LangGraphRun]:
        """A thread's runs, newest first, optionally of one status, with limit/offset as the API.

        Args:
            thread_id: the thread.
            status: pending, running, success, error, timeout or interrupted, if given.
            limit: the most runs to return, 1 to 1000 (default 10).
            offset: how many runs to skip first (default 0).

        Raises:
            ValidationError: a bad status, limit or offset.
            NotFoundError: the thread does not exist.
        """
        params: dict[str, Any] = {
            "thread_id": thread_id,
            "limit": check_int("limit", limit, minimum=1, maximum=1000),
            "offset": check_int("offset", offset, minimum=0),
        }
        shape = None if status is None else check_choice("status", status, RUN_STATUSES)
        with self._scope.read() as raw:
            rows = raw.rows(_LISTS[shape], params)
            if not rows:  # a run of the list proves its thread exists
                THREADS.require(raw, thread_id)
            return [LangGraphRun.from_row(row) for row in rows]

    def update(self, run_id: str, *, metadata: dict[str, Any]) -> LangGraphRun:
        """Merge `metadata` into the run's, moving `updated_at`.

        Args:
            run_id: the run.
            metadata: a JSON object whose keys replace the same keys of the run's metadata.

        Raises:
            ValidationError: bad metadata; nothing is written.
            NotFoundError: there is no such run.
        """
        patch = check_json_object("metadata", metadata)
        with self._scope.write() as raw:
            current = ROWS.get(raw, run_id, for_update=True)
            values = {"metadata": {**current["metadata"], **patch}, "updated_at": self._scope.now_micros()}
            return LangGraphRun.from_row(ROWS.update(raw, run_id, values))

    def delete(self, run_id: str) -> None:
        """Delete a run, whatever its status, and re-derive its thread's status.

        Args:
            run_id: the run.

        Raises:
            NotFoundError: there is no such run.
        """
        with self._scope.write() as raw:
            thread_id = _lock_thread_of(raw, run_id)
            ROWS.delete(raw, run_id)
            log.forget_run(raw, thread_id, run_id)
            refresh_thread_status(raw, [thread_id], self._scope.now_micros())

    def claim_next(self, *, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> LangGraphRun | None:
        """Take the oldest pending run whose thread has no running run, and run it under a lease.

        The returned run carries its new `attempt`; pass it to `heartbeat` and `finish`. On
        PostgreSQL, claimers skip threads another claimer holds (FOR UPDATE SKIP LOCKED); a
        thread never has two running runs (partial unique index).

        Args:
            lease_seconds: how long the lease lasts before `requeue_stale` may take the run back, from 1
                second to 7 days (default 300).

        Raises:
            ValidationError: a bad lease.
        """
        lease = lease_micros(lease_seconds)
        with self._scope.write() as raw:
            now = self._scope.now_micros()
            passed_over: list[str] = []
            while True:
                skipped = {f"passed_{i}": thread_id for i, thread_id in enumerate(passed_over)}
                candidate = raw.first(_CANDIDATES[len(passed_over)], skipped)
                if candidate is None:
                    return None
                claimed = move_all(raw, _CLAIM, now, {**candidate, "lease": lease})
                if claimed:
                    return LangGraphRun.from_row(claimed[0])
                passed_over.append(candidate["thread_id"])

    def heartbeat(self, run_id: str, *, attempt: int, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> LangGraphRun:
        """Extend the lease of a running run, proving ownership by its attempt number.

        Args:
            run_id: the run.
            attempt: the run's `attempt` as the claim returned it (at least 1).
            lease_seconds: the new lease, counted from now, from 1 second to 7 days (default 300).

        Raises:
            ValidationError: a bad attempt or lease.
            NotFoundError: there is no such run.
            ConflictError: `attempt` is stale: the run was requeued and claimed again.
            InvalidTransitionError: the run is no longer running.
        """
        lease = lease_micros(lease_seconds)
        claim = check_int("attempt", attempt, minimum=1)
        with self._scope.write() as raw:
            params = {"run_id": run_id, "attempt": claim, "lease": lease, "now": self._scope.now_micros()}
            row = raw.first(_HEARTBEAT, params)
            if row is None:
                raise _refusal(raw, run_id, claim, "heartbeat", "running")
            return LangGraphRun.from_row(row)

    def append_event(self, run_id: str, *, attempt: int, event: str, data: Any) -> None:
        """Append an event of a running run's stream (a stream mode: values, updates, messages,
        custom, ...), fenced by its attempt as `finish` is, in the run's thread's stream.

        Args:
            run_id: the run.
            attempt: the run's `attempt` as the claim returned it (at least 1).
            event: the event's name, 1 to 64 characters; not `metadata` or `end`, which the store
                writes itself when the run starts and ends.
            data: its JSON data.

        Raises:
            ValidationError: a bad attempt, name or data; nothing is written.
            NotFoundError: there is no such run.
            ConflictError: `attempt` is stale: the run was requeued and claimed again.
            InvalidTransitionError: the run is not running.
        """
        claim = check_int("attempt", attempt, minimum=1)
        name = check_string("event", event, max_length=64)
        if not name or name in RESERVED:
            raise ValidationError(
                f"event must be a stream mode's name, not {name!r} (metadata and end are the store's)."
            )
        payload = check_json("data", data)
        with self._scope.write() as raw:
            found = raw.first(_FENCE_LOCKED, {"run_id": run_id})
            if found is None or found["status"] != "running" or found["attempt"] != claim:
                raise _refusal(raw, run_id, claim, "append_event", "running")
            log.append(raw, name, payload, found["thread_id"], run_id, self._scope.now())

    def finish(self, run_id: str, *, attempt: int, status: FinishStatus) -> LangGraphRun:
        """End a running run as success, error, timeout or interrupted, if `attempt` is still the
        current claim; the thread's status follows.

        Args:
            run_id: the run.
            attempt: the run's `attempt` as the claim returned it (at least 1).
            status: success, error, timeout or interrupted.

        Raises:
            ValidationError: a bad attempt or status.
            NotFoundError: there is no such run.
            ConflictError: `attempt` is stale; the successor's result stands and nothing changes.
            InvalidTransitionError: the run is no longer running (e.g. it was interrupted).
        """
        target = check_choice("status", status, FINISH_STATUSES)
        claim = check_int("attempt", attempt, minimum=1)
        with self._scope.write() as raw:
            thread_id = _lock_thread_of(raw, run_id)
            now = self._scope.now_micros()
            try:
                row = move(raw, runs, RUN, "finish", run_id, now, target=target, where={"attempt": claim})
            except (ConflictError, InvalidTransitionError) as error:
                raise _refusal(raw, run_id, claim, "finish", target) from error
            refresh_thread_status(raw, [thread_id], now)
            return LangGraphRun.from_row(row)

    def cancel(self, run_id: str, *, action: CancelAction = "interrupt") -> LangGraphRun | None:
        """Stop a pending or running run: "interrupt" marks it interrupted (and returns it);
        "rollback" deletes it (and returns None). The thread's status follows.

        Args:
            run_id: the run.
            action: "interrupt" (the default) or "rollback".

        Raises:
            ValidationError: an unknown action.
            NotFoundError: there is no such run.
            InvalidTransitionError: the run has already ended.
        """
        how = check_choice("action", action, CANCEL_ACTIONS)
        with self._scope.write() as raw:
            thread_id = _lock_thread_of(raw, run_id)
            now = self._scope.now_micros()
            row = move(raw, runs, RUN, "cancel", run_id, now, values={"cancel_reason": how})
            if how == "rollback":
                ROWS.delete(raw, run_id)
                log.forget_run(raw, thread_id, run_id)
            refresh_thread_status(raw, [thread_id], now)
            return LangGraphRun.from_row(row) if how == "interrupt" else None

    def requeue_stale(self, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> RunList:
        """Return running runs whose lease expired to pending, or end them in error once they have
        used `max_attempts` claims; return the runs moved.

        Args:
            max_attempts: how many claims a run may use before a stale run ends in error, at least 1
                (default 3).

        Raises:
            ValidationError: a bad max_attempts.
        """
        limit = check_max_attempts(max_attempts)
        with self._scope.write() as raw:
            now = self._scope.now_micros()
            raw.rows(_LOCK_STALE_THREADS, {"now": now})
            moved = [
                LangGraphRun.from_row(row)
                for bulk in _REQUEUE
                for row in move_all(raw, bulk, now, {"max_attempts": limit})
            ]
            refresh_thread_status(raw, [run.thread_id for run in moved if run.status == "error"], now)
            return moved


# A worker's event waits for a finish under way, and then finds the run ended.
_FENCE_LOCKED = Statement(
    sa.select(runs.c.status, runs.c.attempt, runs.c.thread_id)
    .where(runs.c.run_id == sa.bindparam("run_id"))
    .with_for_update()
)


def _refusal(raw: Raw, run_id: str, attempt: int, verb: str, target: str) -> Exception:
    """Why a fenced write (`verb`) on a run matched no row: unknown run, stale attempt, or wrong
    status (a verb that moves no status, as heartbeat, needs the status it keeps: `target`)."""
    found = raw.first(_FENCE, {"run_id": run_id})
    if found is None:
        return NotFoundError(KIND, run_id)
    if found["attempt"] != attempt:
        return stale(run_id, attempt, found["attempt"])
    return refused(RUN, verb, run_id, found["status"], target)
