"""The run lifecycle verbs (DESIGN.md, "Lifecycles"), and the cascade to steps and messages
that runs in the same transaction as the move that ends a run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from threadstore.errors import ConflictError, InvalidTransitionError, ValidationError
from threadstore.fastsql import Raw, Statement, raw_of
from threadstore.openai import content
from threadstore.openai.api import Run
from threadstore.openai.models import messages, run_step_details, run_steps, runs
from threadstore.openai.queries import insert_step, load_run, record_step_end
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
from threadstore.scope import Scope
from threadstore.transitions import changes, transition
from threadstore.validation import check_choice, check_list, check_mapping, check_optional_string, check_string

Json = dict[str, Any]


def move_run(
    connection: Connection | Raw,
    run_id: str,
    target: str,
    now: int,
    *,
    sources: set[str] | None = None,
    values: Json | None = None,
) -> Run:
    """Move a run and, if it ends, its in-progress steps and messages; return the run.

    Raises:
        NotFoundError, InvalidTransitionError, ConflictError: as transitions.transition.
    """
    run = Run.from_row(transition(connection, runs, RUN, run_id, target, now, sources=sources, values=values))
    if target in RUN.terminal:
        _end_children(connection, run, now)
    return run


def _end_statements(run_status: str) -> tuple[Statement, Statement]:
    """The two UPDATEs that end a run's in-progress steps and messages when it ends in `run_status`."""
    now = sa.bindparam("now", type_=sa.BigInteger)
    run_id: sa.BindParameter[str] = sa.bindparam("run_id")
    message_status, reason = MESSAGE_END_WHEN_RUN_ENDS[run_status]
    steps = (
        sa.update(run_steps)
        .where(run_steps.c.run_id == run_id, run_steps.c.status == RUN_STEP.initial)
        .values(**changes(RUN_STEP, STEP_STATUS_WHEN_RUN_ENDS[run_status], now, run_steps))
        .returning(run_steps.c.id)
    )
    messages_ = (
        sa.update(messages)
        .where(messages.c.run_id == run_id, messages.c.status == MESSAGE.initial)
        .values(**changes(MESSAGE, message_status, now, messages), incomplete_reason=reason)
    )
    return Statement(steps), Statement(messages_)


_END = {status: _end_statements(status) for status in RUN.terminal}


def _claim_statement() -> Statement:
    now = sa.bindparam("now", type_=sa.BigInteger)
    oldest = (
        sa.select(runs.c.id)
        .where(runs.c.status == "queued", runs.c.expires_at > now)
        .order_by(runs.c.created_at, runs.c.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claim = (
        sa.update(runs)
        .where(runs.c.id == oldest, runs.c.status == "queued")
        .values(**changes(RUN, "in_progress", now, runs))
        .returning(*runs.c)
    )
    return Statement(claim)


_CLAIM = _claim_statement()


def _end_children(connection: Connection | Raw, run: Run, now: int) -> None:
    raw = raw_of(connection)
    end_steps, end_messages = _END[run.status]
    ended = [row["id"] for row in raw.rows(end_steps, {"run_id": run.id, "now": now})]
    if STEP_STATUS_WHEN_RUN_ENDS[run.status] == "failed" and run.last_error is not None:
        code = run.last_error.code if run.last_error.code in STEP_ERROR_CODES else "server_error"
        for step_id in ended:
            record_step_end(raw, step_id, usage=None, error=(code, run.last_error.message))
    raw.execute(end_messages, {"run_id": run.id, "now": now})


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


def _step_holding(connection: Connection, run_id: str, call_ids: set[str]) -> tuple[str, list[Json]] | None:
    """The run's newest in-progress tool_calls step that holds every one of `call_ids`."""
    rows = connection.execute(
        sa.select(run_steps.c.id, run_step_details.c.tool_calls)
        .join(run_step_details, run_step_details.c.step_id == run_steps.c.id)
        .where(run_steps.c.run_id == run_id, run_steps.c.status == "in_progress", run_steps.c.type == "tool_calls")
        .order_by(run_steps.c.created_at.desc(), run_steps.c.id.desc())
    ).all()
    for row in rows:
        if call_ids <= {call["id"] for call in row.tool_calls}:
            return row.id, list(row.tool_calls)
    return None


def _set_tool_calls(connection: Connection, step_id: str, tool_calls: list[Json]) -> None:
    connection.execute(
        sa.update(run_step_details).where(run_step_details.c.step_id == step_id).values(tool_calls=tool_calls)
    )


class RunVerbs:
    """The lifecycle verbs of the runs repository."""

    _scope: Scope

    def _move(self, run_id: str, target: str, *, sources: set[str] | None = None, values: Json | None = None) -> Run:
        with self._scope.raw_write() as raw:
            return move_run(raw, run_id, target, self._scope.now(), sources=sources, values=values)

    def start(self, run_id: str) -> Run:
        """queued → in_progress; `started_at` is stamped the first time.

        Args:
            run_id: the run.

        Raises:
            NotFoundError: no such run. InvalidTransitionError: it is not queued.
            ConflictError: another writer moved it first.
        """
        return self._move(run_id, "in_progress")

    def claim_next(self) -> Run | None:
        """Atomically take the oldest queued, unexpired run and start it; None if there is none.

        Several workers may call it at once: each run is claimed by one of them
        (FOR UPDATE SKIP LOCKED on PostgreSQL; a write lock taken up front on SQLite).

        Raises:
            ConflictError, StorageError: the database refused the work.
        """
        with self._scope.raw_write() as raw:
            row = raw.first(_CLAIM, {"now": self._scope.now()})
            return None if row is None else Run.from_row(row)

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
        with self._scope.write() as connection:
            now = self._scope.now()
            run = move_run(connection, run_id, "requires_action", now, values={"required_action": action})
            if _step_holding(connection, run_id, {call["id"] for call in calls}) is None:
                recorded = [{**call, "function": {**call["function"], "output": None}} for call in calls]
                owner = {"id": run.id, "thread_id": run.thread_id, "assistant_id": run.assistant_id}
                insert_step(connection, now, owner, {"type": "tool_calls", "tool_calls": recorded}, {})
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
        with self._scope.write() as connection:
            run = load_run(connection, run_id, for_update=True)
            if run.status != "requires_action" or run.required_action is None:
                raise InvalidTransitionError("run", run_id, run.status, "queued")
            asked = {call["id"] for call in run.required_action["submit_tool_outputs"]["tool_calls"]}
            if set(outputs) != asked:
                raise ValidationError(f"tool_outputs must answer exactly {sorted(asked)}; got {sorted(outputs)}.")
            step = _step_holding(connection, run_id, asked)
            if step is None:
                raise ConflictError(
                    f"Run {run_id} asked for {sorted(asked)}, but no in-progress tool_calls step holds them any "
                    "more (it was completed or its calls were replaced); nothing was written."
                )
            now = self._scope.now()
            queued = move_run(connection, run_id, "queued", now, sources={"requires_action"})
            step_id, held = step
            for call in held:
                if call["id"] in outputs:
                    call["function"] = {**call["function"], "output": outputs[call["id"]]}
            _set_tool_calls(connection, step_id, held)
            transition(connection, run_steps, RUN_STEP, step_id, "completed", now)
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
        with self._scope.write() as connection:
            status = load_run(connection, run_id, for_update=True).status
            now = self._scope.now()
            if status == "in_progress":
                return move_run(connection, run_id, "cancelling", now, sources={"in_progress"})
            return move_run(connection, run_id, "cancelled", now, sources={"queued", "requires_action"})

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
        return self._move(run_id, "cancelled", sources={"cancelling"}, values=_usage_values(usage))

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
        return self._move(run_id, "completed", values=_usage_values(usage))

    def fail(self, run_id: str, *, code: str, message: str, usage: dict[str, int] | None = None) -> Run:
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
        return self._move(run_id, "failed", values=values)

    def mark_incomplete(self, run_id: str, *, reason: str | None = None, usage: dict[str, int] | None = None) -> Run:
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
        return self._move(run_id, "incomplete", values={"incomplete_reason": checked, **_usage_values(usage)})

    def expire(self, run_id: str) -> Run:
        """Any active status → expired. `expires_at` keeps the deadline that was missed.

        Args:
            run_id: the run.

        Raises:
            NotFoundError: no such run. InvalidTransitionError: it has ended.
            ConflictError: another writer moved it first.
        """
        return self._move(run_id, "expired")

    def expire_overdue(self) -> list[Run]:
        """Expire every active run whose `expires_at` has come, with the cascade; return them.
        Safe to run twice or from several processes at once: each run is expired once (one
        UPDATE over the overdue rows, which on PostgreSQL skips rows another process holds).

        Raises:
            ConflictError, StorageError: the database refused the work.
        """
        with self._scope.write() as connection:
            now = self._scope.now()
            overdue = (
                sa.select(runs.c.id)
                .where(runs.c.status.in_(RUN.active), runs.c.expires_at <= now)
                .order_by(runs.c.id)
                .with_for_update(skip_locked=True)
            )
            rows = connection.execute(
                sa.update(runs)
                .where(runs.c.id.in_(overdue.scalar_subquery()))
                .values(**changes(RUN, "expired", now, runs))
                .returning(*runs.c)
            ).all()
            expired = [Run.from_row(row._mapping) for row in rows]
            for run in expired:
                _end_children(connection, run, now)
            return expired
