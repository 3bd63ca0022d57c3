"""The run lifecycle verbs (README.md, "Lifecycles"), and the cascade to steps and messages
that runs in the same transaction as the move that ends a run."""

from __future__ import annotations

import sqlalchemy as sa

from threadstore.errors import ConflictError, InvalidTransitionError, NotFoundError, ValidationError
from threadstore.fastsql import ONE, Raw, Statement, one_of
from threadstore.leases import DEFAULT_LEASE_SECONDS, DEFAULT_MAX_ATTEMPTS, check_max_attempts, lease_micros, stale
from threadstore.openai import content
from threadstore.openai.api import LastError, Run
from threadstore.openai.models import messages, run_step_details, run_steps, runs
from threadstore.openai.queries import RUNS, SET_DETAILS, insert_step, record_step_end
from threadstore.openai.states import (
    MESSAGE,
    MESSAGE_END_WHEN_RUN_ENDS,
    RUN,
    RUN_ERROR_CODES,
    RUN_INCOMPLETE_REASONS,
    RUN_STEP,
    STEP_ERROR_CODES,
    STEP_STATUS_WHEN_RUN_ENDS,
)
from threadstore.records import Json
from threadstore.scope import Scope
from threadstore.transitions import Bulk, announce_moved, move, move_all, refused
from threadstore.types import RunErrorCode, RunIncompleteReason
from threadstore.validation import (
    check_choice,
    check_int,
    check_list,
    check_mapping,
    check_optional_int,
    check_optional_string,
    check_string,
)

_WORKING = sorted(RUN.verbs["complete"]["completed"])  # the statuses in which a worker holds a run
# What a step or message of an attempt abandoned by its worker ends with.
_ABANDONED = LastError("server_error", "The worker running this attempt stopped renewing its lease.")
_OUT_OF_ATTEMPTS = "The run's worker stopped renewing its lease, and the run has used all its attempts."


def move_run(
    raw: Raw,
    run_id: str,
    verb: str,
    now: int,
    *,
    target: str | None = None,
    values: Json | None = None,
    attempt: int | None = None,
) -> Run:
    """Move a run by `verb` and, if it ends, its in-progress steps and messages; return the run.
    With `attempt`, only while the run is on that claim (a worker's fence).

    Raises:
        NotFoundError, InvalidTransitionError, ConflictError: as transitions.move; ConflictError
            also when `attempt` is stale.
    """
    where = None if attempt is None else {"attempt": attempt}
    try:
        row = move(raw, runs, RUN, verb, run_id, now, target=target, values=values, where=where, announce=False)
    except ConflictError:
        fence(raw, run_id, attempt)  # a stale worker is told so, rather than that the row moved
        raise
    run = Run.from_row(row)
    if run.status in RUN.terminal:
        end_children(raw, run, now)
    announce_moved(raw, runs, [row], now, [run])  # as the API streams: the steps and messages end first
    return run


def check_attempt(attempt: object) -> int | None:
    """A worker's `attempt` argument: None (not fenced) or the claim it holds, 0 or more.

    Raises:
        ValidationError: not an integer of at least 0.
    """
    return check_optional_int("attempt", attempt, minimum=0)


# The run's claim, locked until the transaction ends: no claim or requeue moves it meanwhile.
_ATTEMPT = Statement(sa.select(runs.c.attempt).where(runs.c.id == sa.bindparam("run_id")).with_for_update())
# The run that wrote a step or a message (a message may have none).
_RUN_OF = {
    table.name: Statement(sa.select(table.c.run_id).where(table.c.id == sa.bindparam("id")))
    for table in (run_steps, messages)
}


def fence(raw: Raw, run_id: str, attempt: int | None) -> None:
    """The worker's fence: with `attempt`, the run must still be on that claim. A run that does
    not exist passes (the caller reports it as it would without `attempt`).

    Raises:
        ConflictError: `attempt` is stale: the run was requeued and claimed again.
    """
    if attempt is None:
        return
    found = raw.first(_ATTEMPT, {"run_id": run_id})
    if found is not None and found["attempt"] != attempt:
        raise stale(run_id, attempt, found["attempt"])


def fence_written(raw: Raw, table: sa.Table, kind: str, object_id: str, attempt: int | None) -> None:
    """`fence` for a worker's write to a step or message (`table`): the run that wrote it must
    still be on the claim `attempt`.

    Raises:
        NotFoundError: there is no such step or message (given `attempt`).
        ValidationError: `attempt` is given for a message no run wrote.
        ConflictError: `attempt` is stale.
    """
    if attempt is None:
        return
    found = raw.first(_RUN_OF[table.name], {"id": object_id})
    if found is None:
        raise NotFoundError(kind, object_id)
    if found["run_id"] is None:
        raise ValidationError(f"The {kind} {object_id} was not written by a run; it takes no attempt.")
    fence(raw, found["run_id"], attempt)


def _end_moves(run_status: str) -> tuple[Bulk, Bulk]:
    """The moves that end a run's in-progress steps and messages when it ends in `run_status`."""
    message_status, reason = MESSAGE_END_WHEN_RUN_ENDS[run_status]
    steps = Bulk(
        run_steps,
        RUN_STEP,
        "end_with_run",
        target=STEP_STATUS_WHEN_RUN_ENDS[run_status],
        where=[run_steps.c.run_id == sa.bindparam("run_id")],
    )
    messages_ = Bulk(
        messages,
        MESSAGE,
        "end_with_run",
        target=message_status,
        where=[messages.c.run_id == sa.bindparam("run_id")],
        values={} if reason is None else {"incomplete_reason": sa.literal(reason)},
    )
    return steps, messages_


_END = {status: _end_moves(status) for status in RUN.terminal}


def _claim() -> Bulk:
    now = sa.bindparam("now", type_=sa.BigInteger)
    oldest = (
        sa.select(runs.c.id)
        .where(one_of(runs.c.status, ["queued"]), runs.c.expires_at > now)
        .order_by(runs.c.created_at, runs.c.id)
        .limit(ONE)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return Bulk(
        runs,
        RUN,
        "claim_next",
        where=[runs.c.id == oldest],
        values={"attempt": runs.c.attempt + 1, "lease_expires_at": sa.bindparam("lease_until", type_=sa.BigInteger)},
    )


def _overdue() -> Bulk:
    now = sa.bindparam("now", type_=sa.BigInteger)
    overdue = (
        sa.select(runs.c.id)
        .where(one_of(runs.c.status, sorted(RUN.active)), runs.c.expires_at <= now)
        .order_by(runs.c.id)
        .with_for_update(skip_locked=True)
    )
    return Bulk(runs, RUN, "expire_overdue", where=[runs.c.id.in_(overdue.scalar_subquery())])


def _stale() -> tuple[Bulk, Bulk, Bulk]:
    """The moves of runs whose lease expired: failed after the last attempt, else queued again;
    a cancelling run is cancelled (its worker will never acknowledge)."""
    stale_ids = (
        sa.select(runs.c.id)
        .where(one_of(runs.c.status, _WORKING), runs.c.lease_expires_at <= sa.bindparam("now_micros"))
        .order_by(runs.c.id)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    limit = sa.bindparam("max_attempts", type_=sa.Integer)
    error = {"last_error_code": sa.literal("server_error"), "last_error_message": sa.literal(_OUT_OF_ATTEMPTS)}
    return (
        Bulk(
            runs,
            RUN,
            "requeue_stale",
            target="failed",
            where=[runs.c.id.in_(stale_ids), runs.c.attempt >= limit],
            values=error,
        ),
        Bulk(runs, RUN, "requeue_stale", target="queued", where=[runs.c.id.in_(stale_ids), runs.c.attempt < limit]),
        Bulk(runs, RUN, "requeue_stale", target="cancelled", where=[runs.c.id.in_(stale_ids)]),
    )


_CLAIM = _claim()
_OVERDUE = _overdue()
_REQUEUE = _stale()
_HEARTBEAT = Statement(
    sa.update(runs)
    .where(
        runs.c.id == sa.bindparam("run_id"), one_of(runs.c.status, _WORKING), runs.c.attempt == sa.bindparam("attempt")
    )
    .values(lease_expires_at=sa.bindparam("lease_until", type_=sa.BigInteger))
    .returning(*runs.c)
)


def end_children(raw: Raw, run: Run, now: int) -> None:
    """The cascade of a run that has just ended: its in-progress steps and messages end to match."""
    _end_children(raw, run.id, run.status, run.last_error, now)


def _end_children(raw: Raw, run_id: str, status: str, error: LastError | None, now: int) -> None:
    """End a run's in-progress steps and messages as a run ending in `status` with `error` does."""
    end_steps, end_messages = _END[status]
    ended = move_all(raw, end_steps, now, {"run_id": run_id}, announce=False)
    if end_steps.target == "failed" and error is not None:
        code = error.code if error.code in STEP_ERROR_CODES else "server_error"
        for step in ended:
            record_step_end(raw, run_id, step["id"], usage=None, error=(code, error.message))
    announce_moved(raw, run_steps, ended, now)  # each failed step's event shows its error
    move_all(raw, end_messages, now, {"run_id": run_id})


def _usage_values(usage: object) -> Json:
    checked = content.usage(usage)
    if checked is None:
        return {}
    return {f"usage_{key}": value for key, value in checked.items()}


def _function_calls(tool_calls: object) -> list[Json]:
    """The function calls a run asks outputs for, in the shape of required_action."""
    given = [
        {"type": "function", **call} if isinstance(call, dict) else call
        for call in check_list("tool_calls", tool_calls)
    ]
    calls = content.tool_calls(given)
    if not calls or any(call["type"] != "function" for call in calls):
        raise ValidationError("tool_calls must be one or more function calls.")
    if len({call["id"] for call in calls}) != len(calls):
        raise ValidationError("tool_calls ids must be distinct.")
    return [
        {
            "id": c["id"],
            "type": "function",
            "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]},
        }
        for c in calls
    ]


def _tool_outputs(tool_outputs: object) -> dict[str, str]:
    outputs: dict[str, str] = {}
    for i, item in enumerate(check_list("tool_outputs", tool_outputs)):
        item = check_mapping(f"tool_outputs[{i}]", item)
        call_id = check_string(f"tool_outputs[{i}].tool_call_id", item.get("tool_call_id"))
        if call_id in outputs:
            raise ValidationError(f"tool_outputs has two outputs for {call_id}.")
        outputs[call_id] = check_optional_string(f"tool_outputs[{i}].output", item.get("output")) or ""
    return outputs


_HOLDING = Statement(
    sa.select(run_steps.c.id, run_step_details.c.tool_calls)
    .join(run_step_details, run_step_details.c.id == run_steps.c.step_details)
    .where(
        run_steps.c.run_id == sa.bindparam("run_id"),
        run_steps.c.status == "in_progress",
        run_steps.c.type == "tool_calls",
    )
    .order_by(run_steps.c.created_at.desc(), run_steps.c.id.desc())
)


def _step_holding(raw: Raw, run_id: str, call_ids: set[str]) -> tuple[str, list[Json]] | None:
    """The run's newest in-progress tool_calls step that holds every one of `call_ids`."""
    for row in raw.rows(_HOLDING, {"run_id": run_id}):
        if call_ids <= {call["id"] for call in row["tool_calls"]}:
            return row["id"], list(row["tool_calls"])
    return None


def _set_tool_calls(raw: Raw, step_id: str, tool_calls: list[Json]) -> None:
    raw.execute(SET_DETAILS, {"step_id": step_id, "type": "tool_calls", "message_id": None, "tool_calls": tool_calls})


class RunVerbs:
    """The lifecycle verbs of the runs repository."""

    _scope: Scope

    def _move(self, run_id: str, verb: str, *, values: Json | None = None, attempt: object = None) -> Run:
        claim = check_attempt(attempt)
        with self._scope.write() as raw:
            return move_run(raw, run_id, verb, self._scope.now(), values=values, attempt=claim)

    def start(self, run_id: str, *, attempt: int | None = None) -> Run:
        """queued → in_progress; `started_at` is stamped the first time.

        Args:
            run_id: the run.
            attempt: the run's `attempt` as its worker's claim returned it; if given, the move is
                refused once another claim has taken the run.

        Raises:
            ValidationError: a bad attempt. NotFoundError: no such run.
            InvalidTransitionError: it is not queued.
            ConflictError: another writer moved it first, or `attempt` is stale.
        """
        return self._move(run_id, "start", attempt=attempt)

    def claim_next(self, *, lease_seconds: int | None = None) -> Run | None:
        """Atomically take the oldest queued, unexpired run and start it; None if there is none.
        The claim raises the run's `attempt`; with `lease_seconds` it also holds the run under a
        lease, which `heartbeat` extends and after which `requeue_stale` may give the run to
        another worker. Pass the returned `attempt` to the worker verbs so that a worker that
        lost its lease cannot overwrite its successor.

        Several workers may call it at once: each run is claimed by one of them
        (FOR UPDATE SKIP LOCKED on PostgreSQL; a write lock taken up front on SQLite).

        Args:
            lease_seconds: how long the claim holds the run, 1 second to 7 days; None (the default)
                for no lease: the run is its worker's until it ends or expires.

        Raises:
            ValidationError: a bad lease.
            ConflictError, StorageError: the database refused the work.
        """
        lease = None if lease_seconds is None else lease_micros(lease_seconds)
        with self._scope.write() as raw:
            until = None if lease is None else self._scope.now_micros() + lease
            rows = move_all(raw, _CLAIM, self._scope.now(), {"lease_until": until})
            return Run.from_row(rows[0]) if rows else None

    def heartbeat(self, run_id: str, *, attempt: int, lease_seconds: int = DEFAULT_LEASE_SECONDS) -> Run:
        """Extend the lease of a run its worker holds (in_progress or cancelling), proving
        ownership by its attempt; the new lease is counted from now.

        Args:
            run_id: the run.
            attempt: the run's `attempt` as the claim returned it.
            lease_seconds: the new lease, 1 second to 7 days (default 300).

        Raises:
            ValidationError: a bad attempt or lease. NotFoundError: no such run.
            ConflictError: `attempt` is stale: the run was requeued and claimed again.
            InvalidTransitionError: no worker holds the run any more (it ended, waits for tool
                outputs, or was requeued).
        """
        lease = lease_micros(lease_seconds)
        claim = check_int("attempt", attempt, minimum=0)
        with self._scope.write() as raw:
            params = {"run_id": run_id, "attempt": claim, "lease_until": self._scope.now_micros() + lease}
            row = raw.first(_HEARTBEAT, params)
            if row is not None:
                return Run.from_row(row)
            current = RUNS.find(raw, run_id)
            if current is None:
                raise NotFoundError("run", run_id)
            fence(raw, run_id, claim)
            raise InvalidTransitionError("run", run_id, current["status"], "in_progress")

    def requeue_stale(self, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> list[Run]:
        """Take back every run whose lease expired: queued again for another worker, or failed
        (`last_error.code` "server_error") once it has used `max_attempts` claims; a cancelling
        run is cancelled. The in-progress steps and messages of a taken-back attempt end as a
        failed run's do. Return the runs moved. Safe to run from several processes at once.

        Args:
            max_attempts: how many claims a run may use, at least 1 (default 3).

        Raises:
            ValidationError: a bad max_attempts.
            ConflictError, StorageError: the database refused the work.
        """
        limit = check_max_attempts(max_attempts)
        with self._scope.write() as raw:
            now = self._scope.now()
            params = {"now_micros": self._scope.now_micros(), "max_attempts": limit}
            moved = [row for bulk in _REQUEUE for row in move_all(raw, bulk, now, params, announce=False)]
            taken = [Run.from_row(row) for row in moved]
            for run in taken:
                if run.status == "queued":
                    _end_children(raw, run.id, "failed", _ABANDONED, now)
                else:
                    end_children(raw, run, now)
            announce_moved(raw, runs, moved, now)
            return taken

    def require_action(self, run_id: str, *, tool_calls: list[Json], attempt: int | None = None) -> Run:
        """in_progress → requires_action, asking for the outputs of function `tool_calls`
        (each `{"id"?, "type": "function", "function": {"name", "arguments"}}`). The calls are
        recorded in the run's in-progress tool_calls step that already holds them all, or else
        in a new tool_calls step, in the same transaction.

        Args:
            run_id: the run.
            tool_calls: one or more function calls with distinct ids; a call without an id gets a new one.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is refused.

        Raises:
            ValidationError: malformed or duplicate calls, or a bad attempt; nothing is written.
            NotFoundError: no such run. InvalidTransitionError: it is not in progress.
            ConflictError: another writer moved it first, or `attempt` is stale.
        """
        calls = _function_calls(tool_calls)
        claim = check_attempt(attempt)
        action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}
        with self._scope.write() as raw:
            now = self._scope.now()
            run = move_run(raw, run_id, "require_action", now, values={"required_action": action}, attempt=claim)
            if _step_holding(raw, run_id, {call["id"] for call in calls}) is None:
                recorded = [{**call, "function": {**call["function"], "output": None}} for call in calls]
                owner = {"id": run.id, "thread_id": run.thread_id, "assistant_id": run.assistant_id}
                insert_step(raw, now, owner, {"type": "tool_calls", "tool_calls": recorded}, {})
            return run

    def submit_tool_outputs(self, run_id: str, *, tool_outputs: list[Json]) -> Run:
        """requires_action → queued, with exactly one output (`{"tool_call_id", "output"}`) for each
        call the run asked for. Each output is written into its function call in the run's
        tool_calls step, and that step completes.

        Args:
            run_id: the run.
            tool_outputs: one `{"tool_call_id", "output"}` for each call the run asked for; a missing or
                None output is stored as "".

        Raises:
            ValidationError: an output missing, extra, or for a call the run did not ask for;
                nothing is written.
            NotFoundError: no such run. InvalidTransitionError: it does not require action.
            ConflictError: another writer moved it first, or the step holding the calls has
                ended or lost them (nothing is written; the outputs are never dropped silently).
        """
        outputs = _tool_outputs(tool_outputs)
        with self._scope.write() as raw:
            run = Run.from_row(RUNS.get(raw, run_id, for_update=True))
            if run.status != "requires_action" or run.required_action is None:
                raise refused(RUN, "submit_tool_outputs", run_id, run.status, "queued")
            asked = {call["id"] for call in run.required_action["submit_tool_outputs"]["tool_calls"]}
            if set(outputs) != asked:
                raise ValidationError(f"tool_outputs must answer exactly {sorted(asked)}; got {sorted(outputs)}.")
            step = _step_holding(raw, run_id, asked)
            if step is None:
                raise ConflictError(
                    f"Run {run_id} asked for {sorted(asked)}, but no in-progress tool_calls step holds them any "
                    "more (it was completed or its calls were replaced); nothing was written."
                )
            now = self._scope.now()
            queued = move_run(raw, run_id, "submit_tool_outputs", now)
            step_id, held = step
            for call in held:
                if call["id"] in outputs:
                    call["function"] = {**call["function"], "output": outputs[call["id"]]}
            _set_tool_calls(raw, step_id, held)
            move(raw, run_steps, RUN_STEP, "complete", step_id, now)
            return queued

    def cancel(self, run_id: str) -> Run:
        """Ask a run to stop: queued or requires_action → cancelled at once (ending its steps
        and messages); in_progress → cancelling, which its worker acknowledges with
        `mark_cancelled`.

        Args:
            run_id: the run.

        Raises:
            NotFoundError: no such run. InvalidTransitionError: it is cancelling or has ended.
            ConflictError: another writer moved it first.
        """
        with self._scope.write() as raw:
            status = RUNS.get(raw, run_id, for_update=True)["status"]
            target = next((to for to, sources in RUN.verbs["cancel"].items() if status in sources), "cancelled")
            return move_run(raw, run_id, "cancel", self._scope.now(), target=target)

    def mark_cancelled(self, run_id: str, *, usage: dict[str, int] | None = None, attempt: int | None = None) -> Run:
        """cancelling → cancelled: the worker's acknowledgement of `cancel`.

        Args:
            run_id: the run.
            usage: the run's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused with ConflictError and nothing is written.

        Raises:
            ValidationError: bad usage. NotFoundError: no such run.
            InvalidTransitionError: it is not cancelling. ConflictError: another writer moved it first.
        """
        return self._move(run_id, "mark_cancelled", values=_usage_values(usage), attempt=attempt)

    def complete(self, run_id: str, *, usage: dict[str, int] | None = None, attempt: int | None = None) -> Run:
        """in_progress or cancelling → completed, with `usage` if given.

        Args:
            run_id: the run.
            usage: the run's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused with ConflictError and nothing is written.

        Raises:
            ValidationError: bad usage. NotFoundError: no such run.
            InvalidTransitionError: it is not in progress or cancelling.
            ConflictError: another writer moved it first.
        """
        return self._move(run_id, "complete", values=_usage_values(usage), attempt=attempt)

    def fail(
        self,
        run_id: str,
        *,
        code: RunErrorCode,
        message: str,
        usage: dict[str, int] | None = None,
        attempt: int | None = None,
    ) -> Run:
        """Any active status → failed, with `last_error` (server_error, rate_limit_exceeded or
        invalid_prompt).

        Args:
            run_id: the run.
            code: server_error, rate_limit_exceeded or invalid_prompt.
            message: what went wrong, at most 10,000 characters.
            usage: the run's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused with ConflictError and nothing is written.

        Raises:
            ValidationError: an unknown code or bad usage. NotFoundError: no such run.
            InvalidTransitionError: it has ended. ConflictError: another writer moved it first.
        """
        error_code, error_message = content.last_error(code, message, RUN_ERROR_CODES)
        values = {"last_error_code": error_code, "last_error_message": error_message, **_usage_values(usage)}
        return self._move(run_id, "fail", values=values, attempt=attempt)

    def mark_incomplete(
        self,
        run_id: str,
        *,
        reason: RunIncompleteReason | None = None,
        usage: dict[str, int] | None = None,
        attempt: int | None = None,
    ) -> Run:
        """in_progress or cancelling → incomplete, because a token limit was reached
        (reason max_completion_tokens or max_prompt_tokens).

        Args:
            run_id: the run.
            reason: max_completion_tokens or max_prompt_tokens, or None.
            usage: the run's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused with ConflictError and nothing is written.

        Raises:
            ValidationError: an unknown reason or bad usage. NotFoundError: no such run.
            InvalidTransitionError: it is not in progress or cancelling.
            ConflictError: another writer moved it first.
        """
        checked = None if reason is None else check_choice("reason", reason, RUN_INCOMPLETE_REASONS)
        values = {"incomplete_reason": checked, **_usage_values(usage)}
        return self._move(run_id, "mark_incomplete", values=values, attempt=attempt)

    def expire(self, run_id: str) -> Run:
        """Any active status → expired. `expires_at` keeps the deadline that was missed.

        Args:
            run_id: the run.

        Raises:
            NotFoundError: no such run. InvalidTransitionError: it has ended.
            ConflictError: another writer moved it first.
        """
        return self._move(run_id, "expire")

    def expire_overdue(self) -> list[Run]:
        """Expire every active run whose `expires_at` has come, with the cascade; return them.
        Safe to run twice or from several processes at once: each run is expired once (one
        UPDATE over the overdue rows, which on PostgreSQL skips rows another process holds).

        Raises:
            ConflictError, StorageError: the database refused the work.
        """
        with self._scope.write() as raw:
            now = self._scope.now()
            rows = move_all(raw, _OVERDUE, now, announce=False)
            expired = [Run.from_row(row) for row in rows]
            for run in expired:
                end_children(raw, run, now)
            announce_moved(raw, runs, rows, now)
            return expired
