"""The run steps repository. A step's details, last error and usage live in their own tables."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from threadstore.ids import new_id
from threadstore.openai import content
from threadstore.openai.api import Deleted, RunStep
from threadstore.openai.models import messages, run_step_details, run_step_last_errors, run_step_usages, run_steps
from threadstore.openai.runs import load_run
from threadstore.openai.states import RUN_STEP
from threadstore.pagination import DEFAULT_LIMIT, Page, fetch_page, list_params
from threadstore.rows import delete_one, fetch_one, require, update_one
from threadstore.scope import Scope
from threadstore.validation import check_metadata

KIND = "run step"

STEP_QUERY = (
    sa.select(
        run_steps,
        run_step_details.c.message_id,
        run_step_details.c.tool_calls,
        run_step_last_errors.c.code.label("error_code"),
        run_step_last_errors.c.message.label("error_message"),
        run_step_usages.c.prompt_tokens,
        run_step_usages.c.completion_tokens,
        run_step_usages.c.total_tokens,
    )
    .join(run_step_details, run_step_details.c.step_id == run_steps.c.id)
    .outerjoin(run_step_last_errors, run_step_last_errors.c.step_id == run_steps.c.id)
    .outerjoin(run_step_usages, run_step_usages.c.step_id == run_steps.c.id)
)


def load_step(connection: Connection, step_id: str, *where: Any) -> RunStep:
    """The step with this id, with its details, error and usage, read in the caller's unit of work.

    Raises:
        NotFoundError: there is none.
    """
    query = STEP_QUERY.where(run_steps.c.id == step_id, *where)
    return RunStep.from_row(fetch_one(connection, query, KIND, step_id))


def details_values(details: dict[str, Any]) -> dict[str, Any]:
    """The run_step_details columns that hold `details` (checked by content.step_details)."""
    if details["type"] == "message_creation":
        return {"message_id": details["message_creation"]["message_id"], "tool_calls": None}
    return {"message_id": None, "tool_calls": details["tool_calls"]}


class RunSteps:
    """Create, read, update and delete the steps of runs."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def create(self, run_id: str, *, step_details: dict[str, Any], metadata: dict[str, str] | None = None) -> RunStep:
        """Add an in-progress step to a run. Its type follows its details: `message_creation`
        (the message must be in the run's thread) or `tool_calls`.

        Raises:
            ValidationError: malformed details or metadata; nothing is written.
            NotFoundError: the run, or the message a message_creation step names, does not exist.
        """
        details = content.step_details(step_details)
        meta = check_metadata(metadata)
        with self._scope.write() as connection:
            run = load_run(connection, run_id)
            if details["type"] == "message_creation":
                message_id = details["message_creation"]["message_id"]
                require(connection, messages, "message", message_id, messages.c.thread_id == run.thread_id)
            step_id = new_id("step")
            connection.execute(
                sa.insert(run_steps).values(
                    id=step_id, created_at=self._scope.now(), run_id=run_id, thread_id=run.thread_id,
                    assistant_id=run.assistant_id, type=details["type"], status=RUN_STEP.initial,
                    metadata=meta,
                )  # fmt: skip
            )
            connection.execute(
                sa.insert(run_step_details).values(step_id=step_id, type=details["type"], **details_values(details))
            )
            return load_step(connection, step_id)

    def get(self, step_id: str, *, run_id: str | None = None) -> RunStep:
        """The step with this id (of this run, if `run_id` is given).

        Raises:
            NotFoundError: there is none.
        """
        where = [] if run_id is None else [run_steps.c.run_id == run_id]
        with self._scope.read() as connection:
            return load_step(connection, step_id, *where)

    def list(
        self,
        run_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[RunStep]:
        """A page of a run's steps, newest first by default.

        Raises:
            ValidationError: a bad limit, order or cursor.
            NotFoundError: the run does not exist.
        """
        params = list_params(limit, order, after, before)
        with self._scope.read() as connection:
            load_run(connection, run_id)
            scope = [run_steps.c.run_id == run_id]
            return fetch_page(connection, STEP_QUERY, run_steps, scope, params, RunStep.from_row)

    def update(self, step_id: str, *, metadata: dict[str, str] | None) -> RunStep:
        """Replace a step's metadata.

        Raises:
            ValidationError: bad metadata; nothing is written.
            NotFoundError: there is no such step.
        """
        values = {"metadata": check_metadata(metadata)}
        with self._scope.write() as connection:
            update_one(connection, run_steps, KIND, step_id, values)
            return load_step(connection, step_id)

    def delete(self, step_id: str) -> Deleted:
        """Delete a step with its details, last error and usage.

        Raises:
            NotFoundError: there is no such step.
        """
        with self._scope.write() as connection:
            delete_one(connection, run_steps, KIND, step_id)
        return Deleted(step_id, "thread.run.step.deleted")


