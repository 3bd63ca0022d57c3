"""The run lifecycle verbs (README.md, "Lifecycles"), and the cascade to steps and messages
that runs in the same transaction as the move that ends a run."""

from __future__ import annotations

import sqlalchemy as sa

from threadstore.errors import ConflictError, ValidationError
from threadstore.fastsql import ONE, Raw, Statement, one_of
from threadstore.openai import content
from threadstore.openai.api import Run
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
from threadstore.validation import check_choice, check_list, check_mapping, check_optional_string, check_string


def move_run(
    raw: Raw, run_id: str, verb: str, now: int, *, target: str | None = None, values: Json | None = None
) -> Run:
    """Move a run by `verb` and, if it ends, its in-progress steps and messages; return the run.

    Raises:
        NotFoundError, InvalidTransitionError, ConflictError: as transitions.move.
    """
    row = move(raw, runs, RUN, verb, run_id, now, target=target, values=values, announce=False)
    run = Run.from_row(row)
    if run.status in RUN.terminal:
        end_children(raw, run, now)
    announce_moved(raw, runs, [row], now)  # as the API streams: the steps and messages end first
    return run


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
    return Bulk(runs, RUN, "claim_next", where=[runs.c.id == oldest])


def _overdue() -> Bulk:
    now = sa.bindparam("now", type_=sa.BigInteger)
    overdue = (
        sa.select(runs.c.id)
        .where(one_of(runs.c.status, sorted(RUN.active)), runs.c.expires_at <= now)
        .order_by(runs.c.id)
        .with_for_update(skip_locked=True)
    )
    return Bulk(runs, RUN, "expire_overdue", where=[runs.c.id.in_(overdue.scalar_subquery())])


_CLAIM = _claim()
_OVERDUE = _overdue()


def end_children(raw: Raw, run: Run, now: int) -> None:
    """The cascade of a run that has just ended: its in-progress steps and messages end to match."""
    end_steps, end_messages = _END[run.status]
    ended = move_all(raw, end_steps, now, {"run_id": run.id}, announce=False)
    if end_steps.target == "failed" and run.last_error is not None:
        code = run.last_error.code if run.last_error.code in STEP_ERROR_CODES else "server_error"
        for step in ended:
            record_step_end(raw, run.id, step["id"], usage=None, error=(code, run.last_error.message))
    announce_moved(raw, run_steps, ended, now)  # each failed step's event shows its error
    move_all(raw, end_messages, now, {"run_id": run.id})


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

    def _move(self, run_id: str, verb: str, *, values: Json | None = None) -> Run:
        with self._scope.write() as raw:
            return move_run(raw, run_id, verb, self._scope.now(), values=values)

    def start(self, run_id: str) -> Run:
        """queued → in_progress; `started_at` is stamped the first time.

        Args:
            run_id: the run.

        Raises:
            NotFoundError: no such run. InvalidTransitionError: it is not queued.
            ConflictError: another writer moved it first.
        """
        return self._move(run_id, "start")

    def claim_next(self) -> Run | None:
        """Atomically take the oldest queued, unexpired run and start it; None if there is none.

        Several workers may call it at once: each run is claimed by one of them
        (FOR UPDATE SKIP LOCKED on PostgreSQL; a write lock taken up front on SQLite).

        Raises:
            ConflictError, StorageError: the database refused the work.
        """
        with self._scope.write() as raw:
            rows = move_all(raw, _CLAIM, self._scope.now())
            return Run.from_row(rows[0]) if rows else None

    def require_action(self, run_id: str, *, tool_calls: list[Json]) -> Run:
        """in_progress → requires_action, asking for the outputs of function `tool_calls`
        (each `{"id"?, "type": "function", "function": {"name", "arguments"}}`). The calls are
        recorded in the run's in-progress tool_calls step that already holds them all, or else
        in a new tool_calls step, in the same transaction.

        Args:
            run_id: the run.
            tool_calls: one or more function calls with distinct ids; a call without an id gets a new one.

        Raises:
            ValidationError: malformed or duplicate calls; nothing is written.
            NotFoundError: no such run. InvalidTransitionError: it is not in progress.
            ConflictError: another writer moved it first.
        """
        calls = _function_calls(tool_calls)
        action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}
        with self._scope.write() as raw:
            now = self._scope.now()
            run = move_run(raw, run_id, "require_action", now, values={"required_action": action})
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

    def mark_cancelled(self, run_id: str, *, usage: dict[str, int] | None = None) -> Run:
        """cancelling → cancelled: the worker's acknowledgement of `cancel`.

        Args:
            run_id: the run.
            usage: the run's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.

        Raises:
            ValidationError: bad usage. NotFoundError: no such run.
            InvalidTransitionError: it is not cancelling. ConflictError: another writer moved it first.
        """
        return self._move(run_id, "mark_cancelled", values=_usage_values(usage))

    def complete(self, run_id: str, *, usage: dict[str, int] | None = None) -> Run:
        """in_progress or cancelling → completed, with `usage` if given.

        Args:
            run_id: the run.
            usage: the run's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.

        Raises:
            ValidationError: bad usage. NotFoundError: no such run.
            InvalidTransitionError: it is not in progress or cancelling.
            ConflictError: another writer moved it first.
        """
        return self._move(run_id, "complete", values=_usage_values(usage))

    def fail(self, run_id: str, *, code: RunErrorCode, message: str, usage: dict[str, int] | None = None) -> Run:
        """Any active status → failed, with `last_error` (server_error, rate_limit_exceeded or
        invalid_prompt).

        Args:
            run_id: the run.
            code: server_error, rate_limit_exceeded or invalid_prompt.
            message: what went wrong, at most 10,000 characters.
            usage: the run's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.

        Raises:
            ValidationError: an unknown code or bad usage. NotFoundError: no such run.
            InvalidTransitionError: it has ended. ConflictError: another writer moved it first.
        """
        error_code, error_message = content.last_error(code, message, RUN_ERROR_CODES)
        values = {"last_error_code": error_code, "last_error_message": error_message, **_usage_values(usage)}
        return self._move(run_id, "fail", values=values)

    def mark_incomplete(
        self, run_id: str, *, reason: RunIncompleteReason | None = None, usage: dict[str, int] | None = None
    ) -> Run:
        """in_progress or cancelling → incomplete, because a token limit was reached
        (reason max_completion_tokens or max_prompt_tokens).

        Args:
            run_id: the run.
            reason: max_completion_tokens or max_prompt_tokens, or None.
            usage: the run's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.

        Raises:
            ValidationError: an unknown reason or bad usage. NotFoundError: no such run.
            InvalidTransitionError: it is not in progress or cancelling.
            ConflictError: another writer moved it first.
        """
        checked = None if reason is None else check_choice("reason", reason, RUN_INCOMPLETE_REASONS)
        return self._move(run_id, "mark_incomplete", values={"incomplete_reason": checked, **_usage_values(usage)})

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
