"""Reads and writes of runs and run steps that several repositories share, each taking the
caller's executor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from threadstore.errors import NotFoundError
from threadstore.fastsql import Raw, Statement, insert, one_of
from threadstore.ids import new_id
from threadstore.openai.api import RunStep
from threadstore.openai.models import (
    assistants,
    messages,
    run_step_details,
    run_step_last_errors,
    run_step_usages,
    run_steps,
    runs,
    threads,
)
from threadstore.openai.states import RUN, RUN_STEP
from threadstore.rows import Rows
from threadstore.transitions import announce_created, create

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
    .join(run_step_details, run_step_details.c.id == run_steps.c.step_details)
    .outerjoin(run_step_last_errors, run_step_last_errors.c.id == run_steps.c.last_error)
    .outerjoin(run_step_usages, run_step_usages.c.id == run_steps.c.usage)
)


RUNS = Rows(runs, "run", parent="thread_id")


_STEP = {
    by_run: Statement(
        STEP_QUERY.where(
            run_steps.c.id == sa.bindparam("id"), *([run_steps.c.run_id == sa.bindparam("run_id")] if by_run else [])
        )
    )
    for by_run in (False, True)
}


def step_row(raw: Raw, step_id: str, *, run_id: str | None = None) -> dict[str, Any]:
    """The row of the step with this id (of this run, if `run_id` is given), joined with its
    details, last error and usage (STEP_QUERY's columns).

    Raises:
        NotFoundError: there is none.
    """
    params = {"id": step_id} if run_id is None else {"id": step_id, "run_id": run_id}
    row = raw.first(_STEP[run_id is not None], params)
    if row is None:
        raise NotFoundError("run step", step_id)
    return row


def load_step(raw: Raw, step_id: str, *, run_id: str | None = None) -> RunStep:
    """The step with this id (of this run, if `run_id` is given), with its details, last error and usage.

    Raises:
        NotFoundError: there is none.
    """
    return RunStep.from_row(step_row(raw, step_id, run_id=run_id))


def details_values(details: dict[str, Any]) -> dict[str, Any]:
    """The run_step_details columns that hold checked `details`."""
    if details["type"] == "message_creation":
        return {"type": details["type"], "message_id": details["message_creation"]["message_id"], "tool_calls": None}
    return {"type": details["type"], "message_id": None, "tool_calls": details["tool_calls"]}


_INSERT_STEP = insert(run_steps)
_EMPTY_STEP = {column.name: None for column in run_steps.c}
# The columns STEP_QUERY adds to a step's own: its details, last error and usage.
_JOINED = {column.name: None for column in STEP_QUERY.selected_columns if column.name not in run_steps.c}


def _insert_related(table: sa.Table) -> Statement:
    """INSERT of one row of a step's related `table`, every column but the id a parameter;
    returns the id the database gave it."""
    columns = [column for column in table.c if column.name != "id"]
    values = {column.name: sa.bindparam(column.name, type_=column.type) for column in columns}
    return Statement(sa.insert(table).values(values).returning(table.c.id))


_INSERT_DETAILS = _insert_related(run_step_details)
_INSERT_USAGE = _insert_related(run_step_usages)
_INSERT_LAST_ERROR = _insert_related(run_step_last_errors)
# A step's details change in place, in the row its step_details names.
SET_DETAILS = Statement(
    sa.update(run_step_details)
    .where(
        run_step_details.c.id
        == sa.select(run_steps.c.step_details).where(run_steps.c.id == sa.bindparam("step_id")).scalar_subquery()
    )
    .values(
        type=sa.bindparam("type"),
        message_id=sa.bindparam("message_id"),
        tool_calls=sa.bindparam("tool_calls", type_=run_step_details.c.tool_calls.type),
    )
)
_SET_END = Statement(
    sa.update(run_steps)
    .where(run_steps.c.id == sa.bindparam("id"))
    .values(usage=sa.bindparam("usage"), last_error=sa.bindparam("last_error"))
)


def _inserted_id(raw: Raw, statement: Statement, values: Mapping[str, Any]) -> int:
    row = raw.first(statement, values)
    assert row is not None  # an INSERT ... RETURNING returns the row it inserted
    return int(row["id"])


def insert_step(
    raw: Raw, now: int, run: Mapping[str, Any], details: dict[str, Any], metadata: dict[str, str]
) -> RunStep:
    """Write an in-progress step of `run` (its `id`, `thread_id` and `assistant_id`) with checked
    `details`; return it."""
    values = details_values(details)
    step = {
        **_EMPTY_STEP,
        "id": new_id("step"),
        "created_at": now,
        "run_id": run["id"],
        "thread_id": run["thread_id"],
        "assistant_id": run["assistant_id"],
        "type": details["type"],
        "status": RUN_STEP.initial,
        "step_details": _inserted_id(raw, _INSERT_DETAILS, {"run_id": run["id"], **values}),
        "metadata": metadata,
    }
    create(raw, _INSERT_STEP, step, now, RUN_STEP, announce=False)
    row = {**step, **_JOINED, "message_id": values["message_id"], "tool_calls": values["tool_calls"]}
    created = RunStep.from_row(row)  # the row as step_row would read it back
    announce_created(raw, run_steps, [row], now, [created])  # its events show its details
    return created


# What adding a step needs of its run: its status, and the ids the step copies.
RUN_OF_STEP_LOCKED = Statement(
    sa.select(runs.c.id, runs.c.status, runs.c.thread_id, runs.c.assistant_id)
    .where(runs.c.id == sa.bindparam("id"))
    .with_for_update()
)
MESSAGE_IN_THREAD = Statement(
    sa.select(messages.c.id).where(
        messages.c.id == sa.bindparam("id"), messages.c.thread_id == sa.bindparam("thread_id")
    )
)


def record_step_end(
    raw: Raw, run_id: str, step_id: str, *, usage: dict[str, int] | None, error: tuple[str, str] | None
) -> None:
    """Write the usage and last error of a step of `run_id` that has just ended, each a row of its
    own that the step then names. Written after the move, so that a move refused leaves nothing
    behind even in a transaction that goes on."""
    if usage is None and error is None:
        return
    ids: dict[str, Any] = {"id": step_id, "usage": None, "last_error": None}
    if usage is not None:
        ids["usage"] = _inserted_id(raw, _INSERT_USAGE, {"run_id": run_id, **usage})
    if error is not None:
        code, message = error
        ids["last_error"] = _inserted_id(raw, _INSERT_LAST_ERROR, {"run_id": run_id, "code": code, "message": message})
    raw.execute(_SET_END, ids)


# The message write path, as statements compiled once (fastsql).
LOCK_THREAD = Statement(sa.select(threads.c.id).where(threads.c.id == sa.bindparam("id")).with_for_update())
ACTIVE_RUN = Statement(
    sa.select(runs.c.id).where(runs.c.thread_id == sa.bindparam("thread_id"), one_of(runs.c.status, sorted(RUN.active)))
)
RUN_OF_THREAD_LOCKED = Statement(
    sa.select(runs.c.id, runs.c.status)
    .where(runs.c.id == sa.bindparam("id"), runs.c.thread_id == sa.bindparam("thread_id"))
    .with_for_update()
)
LIVE_ASSISTANT = Statement(
    sa.select(assistants.c.id).where(assistants.c.id == sa.bindparam("id"), assistants.c.deleted_at.is_(None))
)


def lock_thread(raw: Raw, thread_id: str) -> None:
    """Lock a thread's row until the unit of work ends, so that writes that must see the thread's
    runs and messages as they are (the thread lock) happen one at a time on PostgreSQL; a SQLite
    write transaction is exclusive already.

    Raises:
        NotFoundError: there is no such thread.
    """
    if raw.first(LOCK_THREAD, {"id": thread_id}) is None:
        raise NotFoundError("thread", thread_id)
