"""The run steps repository. A step's details, last error and usage are rows of their own tables,
which the step names by foreign key."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from threadstore.errors import ConflictError, NotFoundError, ValidationError
from threadstore.events import log
from threadstore.fastsql import Statement
from threadstore.openai import content, streams
from threadstore.openai.api import Deleted, RunStep
from threadstore.openai.models import run_step_details, run_step_last_errors, run_step_usages, run_steps, runs
from threadstore.openai.queries import (
    MESSAGE_IN_THREAD,
    RUN_OF_STEP_LOCKED,
    SET_DETAILS,
    STEP_QUERY,
    details_values,
    insert_step,
    load_step,
    record_step_end,
    step_row,
)
from threadstore.openai.run_verbs import check_attempt, fence, fence_written
from threadstore.openai.states import RUN_STEP, STEP_ERROR_CODES
from threadstore.pagination import DEFAULT_LIMIT, Lister, Owner, Page, list_params
from threadstore.rows import Rows
from threadstore.scope import Scope
from threadstore.transitions import announce_moved, move
from threadstore.types import Order, StepErrorCode
from threadstore.validation import check_metadata

KIND = "run step"
_ROWS = Rows(run_steps, KIND)
# Deleting a step deletes the rows it names; the step first, as they are what its keys point at.
_DELETE = Statement(
    sa.delete(run_steps)
    .where(run_steps.c.id == sa.bindparam("id"))
    .returning(run_steps.c.step_details, run_steps.c.last_error, run_steps.c.usage)
)
_DELETE_RELATED = {
    column: Statement(sa.delete(table).where(table.c.id == sa.bindparam("id")))
    for column, table in (
        ("step_details", run_step_details),
        ("last_error", run_step_last_errors),
        ("usage", run_step_usages),
    )
}
_LIST = Lister(STEP_QUERY, run_steps, scope=("run_id",), owner=Owner(runs, "run", "run_id"))


class RunSteps:
    """Create, read, update and delete the steps of runs, and move them through their lifecycle:
    in_progress → completed | failed | cancelled | expired."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def create(
        self,
        run_id: str,
        *,
        step_details: dict[str, Any],
        metadata: dict[str, str] | None = None,
        attempt: int | None = None,
    ) -> RunStep:
        """Add an in-progress step to an in-progress run. Its type follows its details:
        `message_creation` (the message must be in the run's thread) or `tool_calls`.

        Args:
            run_id: the run; it must be in progress.
            step_details: `{"type": "message_creation", "message_creation": {"message_id": ...}}` or
                `{"type": "tool_calls", "tool_calls": [...]}`.
            metadata: up to 16 string pairs.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: malformed details, metadata or attempt; nothing is written.
            NotFoundError: the run, or the message a message_creation step names, does not exist.
            ConflictError: the run is not in progress, or `attempt` is stale.
        """
        details = content.step_details(step_details)
        meta = check_metadata(metadata)
        claim = check_attempt(attempt)
        with self._scope.write() as raw:
            fence(raw, run_id, claim)
            run = raw.first(RUN_OF_STEP_LOCKED, {"id": run_id})  # a run that is ending waits for us, or we for it
            if run is None:
                raise NotFoundError("run", run_id)
            if run["status"] != "in_progress":
                raise ConflictError(f"Run {run_id} is {run['status']}; steps are added only while it is in_progress.")
            if details["type"] == "message_creation":
                message_id = details["message_creation"]["message_id"]
                if raw.first(MESSAGE_IN_THREAD, {"id": message_id, "thread_id": run["thread_id"]}) is None:
                    raise NotFoundError("message", message_id)
            return insert_step(raw, self._scope.now(), run, details, meta)

    def get(self, step_id: str, *, run_id: str | None = None) -> RunStep:
        """The step with this id (of this run, if `run_id` is given).

        Args:
            step_id: the step.
            run_id: the run it must belong to, if given.

        Raises:
            NotFoundError: there is none.
        """
        with self._scope.read() as raw:
            return load_step(raw, step_id, run_id=run_id)

    def list(
        self,
        run_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[RunStep]:
        """A page of a run's steps, newest first by default.

        Args:
            run_id: the run.
            limit: the most steps a page holds, 1 to 100 (default 20).
            order: "asc" or "desc" (the default), by creation time.
            after: the id of a step in this list; the page holds the steps after it.
            before: the id of a step in this list; the page holds the steps before it.

        Raises:
            ValidationError: a bad limit, order or cursor.
            NotFoundError: the run does not exist.
        """
        params = list_params(limit, order, after, before)
        with self._scope.read() as raw:
            return _LIST.page(raw, {"run_id": run_id}, params, RunStep.from_row)

    def update(self, step_id: str, *, metadata: dict[str, str] | None) -> RunStep:
        """Replace a step's metadata.

        Args:
            step_id: the step.
            metadata: the new metadata, up to 16 string pairs; None clears it.

        Raises:
            ValidationError: bad metadata; nothing is written.
            NotFoundError: there is no such step.
        """
        values = {"metadata": check_metadata(metadata)}
        with self._scope.write() as raw:
            _ROWS.update(raw, step_id, values)
            return load_step(raw, step_id)

    def update_details(self, step_id: str, *, step_details: dict[str, Any], attempt: int | None = None) -> RunStep:
        """Replace the details of an in-progress step (of the same type), e.g. as tool calls stream in.

        Args:
            step_id: the step.
            step_details: the new details, as in `create`, of the step's type.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: malformed details, details of another type, or a bad attempt; nothing
                is written.
            NotFoundError: there is no such step.
            ConflictError: the step has ended, or `attempt` is stale.
        """
        details = content.step_details(step_details)
        claim = check_attempt(attempt)
        with self._scope.write() as raw:
            fence_written(raw, run_steps, KIND, step_id, claim)
            step = load_step(raw, step_id)
            if step.type != details["type"]:
                raise ValidationError(f"Step {step_id} is a {step.type} step, not {details['type']}.")
            if step.status != "in_progress":
                raise ConflictError(f"Step {step_id} is {step.status}; its details change only while in_progress.")
            raw.execute(SET_DETAILS, {"step_id": step_id, **details_values(details)})
            delta = streams.step_delta(step_id, details)
            log.append(raw, "thread.run.step.delta", delta, step.thread_id, step.run_id, self._scope.now())
            return load_step(raw, step_id)

    def complete(self, step_id: str, *, usage: dict[str, int] | None = None, attempt: int | None = None) -> RunStep:
        """in_progress → completed, stamping completed_at.

        Args:
            step_id: the step.
            usage: the step's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: bad usage or attempt. NotFoundError: no such step.
            InvalidTransitionError: the step has ended.
            ConflictError: another writer moved it first, or `attempt` is stale.
        """
        return self._end(step_id, "complete", usage=usage, attempt=attempt)

    def fail(
        self,
        step_id: str,
        *,
        code: StepErrorCode,
        message: str,
        usage: dict[str, int] | None = None,
        attempt: int | None = None,
    ) -> RunStep:
        """in_progress → failed with `last_error` (code server_error or rate_limit_exceeded).

        Args:
            step_id: the step.
            code: server_error or rate_limit_exceeded.
            message: what went wrong, at most 10,000 characters.
            usage: the step's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: an unknown code, bad usage or a bad attempt. NotFoundError: no such step.
            InvalidTransitionError: the step has ended.
            ConflictError: another writer moved it first, or `attempt` is stale.
        """
        error = content.last_error(code, message, STEP_ERROR_CODES)
        return self._end(step_id, "fail", usage=usage, error=error, attempt=attempt)

    def cancel(self, step_id: str, *, usage: dict[str, int] | None = None, attempt: int | None = None) -> RunStep:
        """in_progress → cancelled, stamping cancelled_at.

        Args:
            step_id: the step.
            usage: the step's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: bad usage or attempt. NotFoundError: no such step.
            InvalidTransitionError: the step has ended.
            ConflictError: another writer moved it first, or `attempt` is stale.
        """
        return self._end(step_id, "cancel", usage=usage, attempt=attempt)

    def expire(self, step_id: str, *, usage: dict[str, int] | None = None, attempt: int | None = None) -> RunStep:
        """in_progress → expired, stamping expired_at.

        Args:
            step_id: the step.
            usage: the step's token usage, if given: `prompt_tokens`, `completion_tokens` and optionally
                `total_tokens`, which must be their sum.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: bad usage or attempt. NotFoundError: no such step.
            InvalidTransitionError: the step has ended.
            ConflictError: another writer moved it first, or `attempt` is stale.
        """
        return self._end(step_id, "expire", usage=usage, attempt=attempt)

    def _end(
        self,
        step_id: str,
        verb: str,
        *,
        usage: dict[str, int] | None,
        error: tuple[str, str] | None = None,
        attempt: object = None,
    ) -> RunStep:
        checked_usage = content.usage(usage)
        claim = check_attempt(attempt)
        with self._scope.write() as raw:
            fence_written(raw, run_steps, KIND, step_id, claim)
            now = self._scope.now()
            step = move(raw, run_steps, RUN_STEP, verb, step_id, now, announce=False)
            record_step_end(raw, step["run_id"], step_id, usage=checked_usage, error=error)
            ended = step_row(raw, step_id)
            answer = RunStep.from_row(ended)
            announce_moved(raw, run_steps, [ended], now, [answer])  # its event shows its usage and error
            return answer

    def delete(self, step_id: str) -> Deleted:
        """Delete a step with its details, last error and usage.

        Args:
            step_id: the step.

        Raises:
            NotFoundError: there is no such step.
        """
        with self._scope.write() as raw:
            keys = raw.first(_DELETE, {"id": step_id})
            if keys is None:
                raise NotFoundError(KIND, step_id)
            for column, statement in _DELETE_RELATED.items():
                if keys[column] is not None:
                    raw.execute(statement, {"id": keys[column]})
        return Deleted(step_id, "thread.run.step.deleted")
