"""The LangGraph runs repository: multitask strategies on create, leased claims fenced by an
attempt number, and the thread status derived in every transaction that changes a run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from threadstore.errors import ConflictError, InvalidTransitionError, NotFoundError
from threadstore.ids import new_uuid
from threadstore.langgraph import thread_status
from threadstore.langgraph.api import LangGraphRun
from threadstore.langgraph.models import runs, threads
from threadstore.langgraph.states import (
    BUSY_RUN_STATUSES,
    CANCEL_ACTIONS,
    FINISH_STATUSES,
    MULTITASK_STRATEGIES,
    RUN,
    RUN_STATUSES,
)
from threadstore.rows import fetch_one
from threadstore.scope import Scope
from threadstore.transitions import changes, transition
from threadstore.validation import check_choice, check_int, check_json_object, check_string, check_uuid

KIND = "langgraph run"
RunList = list[LangGraphRun]
DEFAULT_LEASE_SECONDS = 300
DEFAULT_MAX_ATTEMPTS = 3
MAX_LEASE_SECONDS = 7 * 86_400


def _select(run_id: str) -> sa.Select[Any]:
    return sa.select(runs).where(runs.c.run_id == run_id)


def _lease(seconds: object) -> int:
    return check_int("lease_seconds", seconds, minimum=1, maximum=MAX_LEASE_SECONDS) * 1_000_000


def _lock_threads_of(connection: Connection, run_ids: list[str]) -> list[str]:
    """Lock the threads of these runs, in id order, and return their ids.

    Every write that changes a run and its thread locks the thread first, the order claims use
    too, so that two writers never wait for each other's locks in a cycle (a deadlock on
    PostgreSQL)."""
    owners = sa.select(runs.c.thread_id).where(runs.c.run_id.in_(run_ids)).distinct()
    query = (
        sa.select(threads.c.thread_id)
        .where(threads.c.thread_id.in_(owners))
        .order_by(threads.c.thread_id)
        .with_for_update()
    )
    return list(connection.execute(query).scalars())


def _has_running(thread_id: Any) -> sa.Exists:
    running = sa.alias(runs, "running")
    return sa.exists().where(running.c.thread_id == thread_id, running.c.status == "running")


def _next_candidate(connection: Connection, passed_over: list[str]) -> RowMapping | None:
    """The oldest pending run whose thread has no running run, with its thread locked; threads
    another claimer holds are skipped (FOR UPDATE SKIP LOCKED on PostgreSQL)."""
    query = (
        sa.select(runs.c.run_id, runs.c.thread_id)
        .join(threads, threads.c.thread_id == runs.c.thread_id)
        .where(runs.c.status == "pending", ~_has_running(runs.c.thread_id), runs.c.thread_id.not_in(passed_over))
        .order_by(runs.c.created_at, runs.c.run_id)
        .limit(1)
        .with_for_update(of=threads, skip_locked=True)
    )
    return connection.execute(query).mappings().first()


def _busy_runs(connection: Connection, thread_id: str) -> list[str]:
    query = sa.select(runs.c.run_id).where(runs.c.thread_id == thread_id, runs.c.status.in_(BUSY_RUN_STATUSES))
    return list(connection.execute(query).scalars())


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
        multitask_strategy: str = "enqueue",
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
        with self._scope.write() as connection:
            # Lock the thread so that two creates on it decide their strategies one after the other.
            locked = sa.select(threads.c.thread_id).where(threads.c.thread_id == thread_id).with_for_update()
            fetch_one(connection, locked, "langgraph thread", thread_id)
            if connection.execute(_select(values["run_id"])).first() is not None:
                raise ConflictError(f"Run {values['run_id']} already exists.")  # before any strategy writes
            now = self._scope.now_micros()
            self._apply_strategy(connection, thread_id, values["multitask_strategy"], now)
            values.update(thread_id=thread_id, created_at=now, updated_at=now, status=RUN.initial, attempt=0)
            connection.execute(sa.insert(runs).values(**values))
            thread_status.refresh(connection, [thread_id], now)
            return LangGraphRun.from_row(fetch_one(connection, _select(values["run_id"]), KIND, values["run_id"]))

    def _apply_strategy(self, connection: Connection, thread_id: str, strategy: str, now: int) -> None:
        busy = _busy_runs(connection, thread_id)
        if not busy or strategy == "enqueue":
            return
        if strategy == "reject":
            raise ConflictError(
                f"Thread {thread_id} has runs in progress ({', '.join(busy)}); the new run was rejected."
            )
        if strategy == "rollback":
            connection.execute(sa.delete(runs).where(runs.c.run_id.in_(busy)))
            return
        for run_id in busy:
            transition(connection, runs, RUN, run_id, "interrupted", now, values={"updated_at": now})

    def get(self, run_id: str, *, thread_id: str | None = None) -> LangGraphRun:
        """The run with this id (on this thread, if `thread_id` is given).

        Args:
            run_id: the run.
            thread_id: the thread it must be on, if given.

        Raises:
            NotFoundError: there is none.
        """
        query = _select(run_id) if thread_id is None else _select(run_id).where(runs.c.thread_id == thread_id)
        with self._scope.read() as connection:
            return LangGraphRun.from_row(fetch_one(connection, query, KIND, run_id))

    def list(
        self, thread_id: str, *, status: str | None = None, limit: int = 10, offset: int = 0
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
        conditions = [runs.c.thread_id == thread_id]
        if status is not None:
            conditions.append(runs.c.status == check_choice("status", status, RUN_STATUSES))
        query = (
            sa.select(runs)
            .where(*conditions)
            .order_by(runs.c.created_at.desc(), runs.c.run_id.desc())
            .limit(check_int("limit", limit, minimum=1, maximum=1000))
            .offset(check_int("offset", offset, minimum=0))
        )
        with self._scope.read() as connection:
            fetch_one(
                connection, sa.select(threads).where(threads.c.thread_id == thread_id), "langgraph thread", thread_id
            )
            return [LangGraphRun.from_row(row._mapping) for row in connection.execute(query)]

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
        with self._scope.write() as connection:
            current = LangGraphRun.from_row(fetch_one(connection, _select(run_id).with_for_update(), KIND, run_id))
            connection.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id)
                .values(metadata={**current.metadata, **patch}, updated_at=self._scope.now_micros())
            )
            return LangGraphRun.from_row(fetch_one(connection, _select(run_id), KIND, run_id))

    def delete(self, run_id: str) -> None:
        """Delete a run, whatever its status, and re-derive its thread's status.

        Args:
            run_id: the run.

        Raises:
            NotFoundError: there is no such run.
        """
        with self._scope.write() as connection:
            _lock_threads_of(connection, [run_id])
            run = LangGraphRun.from_row(fetch_one(connection, _select(run_id), KIND, run_id))
            connection.execute(sa.delete(runs).where(runs.c.run_id == run_id))
            thread_status.refresh(connection, [run.thread_id], self._scope.now_micros())

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
        lease = _lease(lease_seconds)
        with self._scope.write() as connection:
            now = self._scope.now_micros()
            passed_over: list[str] = []
            while (candidate := _next_candidate(connection, passed_over)) is not None:
                # The thread is locked now, so this statement's snapshot holds every committed
                # claim on it: a thread that got a running run meanwhile is passed over.
                row = connection.execute(
                    sa.update(runs)
                    .where(
                        runs.c.run_id == candidate["run_id"],
                        runs.c.status == "pending",
                        ~_has_running(candidate["thread_id"]),
                    )
                    .values(
                        **changes(RUN, "running", now, runs),
                        attempt=runs.c.attempt + 1,
                        lease_expires_at=now + lease,
                        updated_at=now,
                    )
                    .returning(*runs.c)
                ).first()
                if row is not None:
                    return LangGraphRun.from_row(row._mapping)
                passed_over.append(candidate["thread_id"])
            return None

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
        lease = _lease(lease_seconds)
        claim = check_int("attempt", attempt, minimum=1)
        with self._scope.write() as connection:
            now = self._scope.now_micros()
            row = connection.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id, runs.c.status == "running", runs.c.attempt == claim)
                .values(lease_expires_at=now + lease, updated_at=now)
                .returning(*runs.c)
            ).first()
            if row is None:
                raise _refusal(connection, run_id, claim, "running")
            return LangGraphRun.from_row(row._mapping)

    def finish(self, run_id: str, *, attempt: int, status: str) -> LangGraphRun:
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
        with self._scope.write() as connection:
            _lock_threads_of(connection, [run_id])
            now = self._scope.now_micros()
            try:
                row = transition(
                    connection,
                    runs,
                    RUN,
                    run_id,
                    target,
                    now,
                    sources={"running"},
                    values={"updated_at": now},
                    where={"attempt": claim},
                )
            except (ConflictError, InvalidTransitionError) as error:
                raise _refusal(connection, run_id, claim, target) from error
            thread_status.refresh(connection, [row["thread_id"]], now)
            return LangGraphRun.from_row(row)

    def cancel(self, run_id: str, *, action: str = "interrupt") -> LangGraphRun | None:
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
        with self._scope.write() as connection:
            _lock_threads_of(connection, [run_id])
            now = self._scope.now_micros()
            values = {"updated_at": now, "cancel_reason": how}
            row = transition(connection, runs, RUN, run_id, "interrupted", now, values=values)
            if how == "rollback":
                connection.execute(sa.delete(runs).where(runs.c.run_id == run_id))
            thread_status.refresh(connection, [row["thread_id"]], now)
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
        limit = check_int("max_attempts", max_attempts, minimum=1)
        with self._scope.write() as connection:
            now = self._scope.now_micros()
            stale = sa.select(runs.c.run_id).where(runs.c.status == "running", runs.c.lease_expires_at <= now)
            _lock_threads_of(connection, list(connection.execute(stale).scalars()))
            moved = []
            for target, spent in (("error", runs.c.attempt >= limit), ("pending", runs.c.attempt < limit)):
                rows = connection.execute(
                    sa.update(runs)
                    .where(runs.c.status == "running", runs.c.lease_expires_at <= now, spent)
                    .values(**changes(RUN, target, now, runs), updated_at=now)
                    .returning(*runs.c)
                ).all()
                moved += [LangGraphRun.from_row(row._mapping) for row in rows]
            thread_status.refresh(connection, [run.thread_id for run in moved if run.status == "error"], now)
            return moved


def _refusal(connection: Connection, run_id: str, attempt: int, target: str) -> Exception:
    """Why a fenced write on a run matched no row: unknown run, stale attempt, or wrong status."""
    found = connection.execute(sa.select(runs.c.status, runs.c.attempt).where(runs.c.run_id == run_id)).first()
    if found is None:
        return NotFoundError(KIND, run_id)
    if found.attempt != attempt:
        return ConflictError(
            f"Attempt {attempt} of run {run_id} is stale (it is on attempt {found.attempt}); nothing was changed."
        )
    return InvalidTransitionError(KIND, run_id, found.status, target)
