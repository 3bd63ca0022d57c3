"""The runs repository: creation, reads and metadata updates. Lifecycle verbs live beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import sqlalchemy as sa

from threadstore.errors import ConflictError, NotFoundError
from threadstore.events import log
from threadstore.fastsql import Raw, Statement, insert
from threadstore.ids import new_id
from threadstore.openai import content
from threadstore.openai.api import Deleted, Run
from threadstore.openai.messages import insert_message, message_inputs
from threadstore.openai.models import assistants, runs, threads
from threadstore.openai.queries import ACTIVE_RUN, RUNS, lock_thread
from threadstore.openai.run_verbs import RunVerbs
from threadstore.openai.states import REASONING_EFFORTS, RUN, RUN_STEP_INCLUDES, ReasoningEffort, RunStepInclude
from threadstore.pagination import DEFAULT_LIMIT, Lister, Owner, Page, list_params
from threadstore.records import JsonList
from threadstore.scope import Scope
from threadstore.transitions import create
from threadstore.types import Order
from threadstore.validation import (
    MAX_INT32,
    check_bool,
    check_choice,
    check_int,
    check_list,
    check_metadata,
    check_optional_int,
    check_optional_number,
    check_optional_string,
)

DEFAULT_EXPIRES_IN = 600
MAX_EXPIRES_IN = 10 * 365 * 86_400  # ten years


class RunOptions(TypedDict, total=False):
    """The options of a new run that `threads.create_and_run` passes on to `runs.create`."""

    model: str | None
    instructions: str | None
    tools: JsonList | None
    metadata: dict[str, str] | None
    expires_in: int
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: dict[str, Any] | None
    tool_choice: Any
    parallel_tool_calls: bool
    response_format: Any
    reasoning_effort: ReasoningEffort | None
    include: Sequence[RunStepInclude] | None


_LIST = Lister(sa.select(runs), runs, scope=("thread_id",), owner=Owner(threads, "thread", "thread_id"))


class Runs(RunVerbs):
    """Create, read, update and delete runs, and move them through their lifecycle (RunVerbs)."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def create(
        self,
        thread_id: str,
        *,
        assistant_id: str,
        model: str | None = None,
        instructions: str | None = None,
        tools: JsonList | None = None,
        metadata: dict[str, str] | None = None,
        expires_in: int = DEFAULT_EXPIRES_IN,
        temperature: float | None = None,
        top_p: float | None = None,
        max_prompt_tokens: int | None = None,
        max_completion_tokens: int | None = None,
        truncation_strategy: dict[str, Any] | None = None,
        tool_choice: Any = "auto",
        parallel_tool_calls: bool = True,
        response_format: Any = None,
        additional_instructions: str | None = None,
        additional_messages: Sequence[Mapping[str, Any]] | None = None,
        reasoning_effort: ReasoningEffort | None = None,
        include: Sequence[RunStepInclude] | None = None,
    ) -> Run:
        """Queue a run of an assistant on a thread: every field of the API's create-run request.
        `model`, `instructions`, `tools`, `temperature`, `top_p` and `response_format` default to
        the assistant's.

        Args:
            thread_id: the thread; it must have no active run.
            assistant_id: the assistant to run.
            model: the model's name; the assistant's when None.
            instructions: at most 256,000 characters; the assistant's when None.
            tools: as for an assistant; the assistant's when None.
            metadata: up to 16 string pairs.
            expires_in: seconds until the run expires, from 1 up to ten years (default 600).
            temperature: between 0 and 2; the assistant's when None.
            top_p: between 0 and 1; the assistant's when None.
            max_prompt_tokens: the most prompt tokens the run may use, at least 256; None for no limit.
            max_completion_tokens: the most completion tokens the run may use, at least 16; None for no limit.
            truncation_strategy: `{"type": "auto"}` or `{"type": "last_messages", "last_messages": n}` with n
                at least 1; None means auto.
            tool_choice: "none", "auto" (the default), "required", or a `{"type": ...}` object naming a tool.
            parallel_tool_calls: whether the model may call tools in parallel (default True).
            response_format: "auto" or a `{"type": ...}` object; the assistant's when None.
            additional_instructions: appended to the run's instructions (after a blank line).
            additional_messages: messages (`role`, `content`, optionally `attachments`, `metadata`)
                added to the thread before the run, in the same transaction.
            reasoning_effort: "none", "minimal", "low", "medium", "high", "xhigh" or "max"; None for
                the model's default.
            include: run step fields to include (the API's RunStepInclude values).

        Raises:
            ValidationError: a field breaks the API's rules; nothing is written.
            NotFoundError: the thread or assistant does not exist.
            ConflictError: the thread already has an active run.
        """
        given: dict[str, Any] = {
            "model": check_optional_string("model", model),
            "instructions": check_optional_string("instructions", instructions, max_length=256_000),
            "tools": None if tools is None else content.tools(tools),
            "temperature": check_optional_number("temperature", temperature, minimum=0, maximum=2),
            "top_p": check_optional_number("top_p", top_p, minimum=0, maximum=1),
            "response_format": None if response_format is None else content.response_format(response_format),
        }
        values: dict[str, Any] = {
            "metadata": check_metadata(metadata),
            "max_prompt_tokens": check_optional_int(
                "max_prompt_tokens", max_prompt_tokens, minimum=256, maximum=MAX_INT32
            ),
            "max_completion_tokens": check_optional_int(
                "max_completion_tokens", max_completion_tokens, minimum=16, maximum=MAX_INT32
            ),
            "truncation_strategy": content.truncation_strategy(truncation_strategy),
            "tool_choice": content.tool_choice(tool_choice),
            "parallel_tool_calls": check_bool("parallel_tool_calls", parallel_tool_calls),
            "reasoning_effort": None
            if reasoning_effort is None
            else check_choice("reasoning_effort", reasoning_effort, REASONING_EFFORTS),
            "include": [
                check_choice("include[]", item, RUN_STEP_INCLUDES) for item in check_list("include", include or [])
            ],
        }
        appended = check_optional_string("additional_instructions", additional_instructions, max_length=256_000)
        before = message_inputs("additional_messages", additional_messages or [])
        lifetime = check_int("expires_in", expires_in, minimum=1, maximum=MAX_EXPIRES_IN)
        with self._scope.write() as raw:
            lock_thread(raw, thread_id)
            active = raw.first(ACTIVE_RUN, {"thread_id": thread_id})
            if active is not None:
                raise ConflictError(f"Thread {thread_id} already has an active run {active['id']}.")
            values.update(_with_defaults(raw, assistant_id, given))
            if appended is not None:
                values["instructions"] = (
                    f"{values['instructions']}\n\n{appended}" if values["instructions"] else appended
                )
            now = self._scope.now()
            for message in before:
                insert_message(raw, now, thread_id, message)
            values.update(
                id=new_id("run"),
                created_at=now,
                thread_id=thread_id,
                assistant_id=assistant_id,
                status=RUN.initial,
                expires_at=now + lifetime,
                attempt=0,
            )
            row = {**_EMPTY_RUN, **values}
            run = Run.from_row(row)
            create(raw, _INSERT, row, now, RUN, built=run)
            return run

    def get(self, run_id: str, *, thread_id: str | None = None, for_update: bool = False) -> Run:
        """The run with this id (in this thread, if `thread_id` is given). In a transaction,
        `for_update` locks it until the transaction ends.

        Args:
            run_id: the run.
            thread_id: the thread it must be in, if given.
            for_update: lock it until the transaction ends.

        Raises:
            NotFoundError: there is none.
        """
        with self._scope.read() as raw:
            return Run.from_row(RUNS.get(raw, run_id, thread_id, for_update=for_update))

    def list(
        self,
        thread_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[Run]:
        """A page of a thread's runs, newest first by default.

        Args:
            thread_id: the thread.
            limit: the most runs a page holds, 1 to 100 (default 20).
            order: "asc" or "desc" (the default), by creation time.
            after: the id of a run in this list; the page holds the runs after it.
            before: the id of a run in this list; the page holds the runs before it.

        Raises:
            ValidationError: a bad limit, order or cursor.
            NotFoundError: the thread does not exist.
        """
        params = list_params(limit, order, after, before)
        with self._scope.read() as raw:
            return _LIST.page(raw, {"thread_id": thread_id}, params, Run.from_row)

    def update(self, run_id: str, *, metadata: dict[str, str] | None) -> Run:
        """Replace a run's metadata, the only field a client may change.

        Args:
            run_id: the run.
            metadata: the new metadata, up to 16 string pairs; None clears it.

        Raises:
            ValidationError: bad metadata; nothing is written.
            NotFoundError: there is no such run.
        """
        values = {"metadata": check_metadata(metadata)}
        with self._scope.write() as raw:
            return Run.from_row(RUNS.update(raw, run_id, values))

    def delete(self, run_id: str) -> Deleted:
        """Delete a run and its steps; the messages it wrote stay, with `run_id` cleared.

        Args:
            run_id: the run.

        Raises:
            NotFoundError: there is no such run.
        """
        with self._scope.write() as raw:
            thread_id = RUNS.get(raw, run_id)["thread_id"]
            RUNS.delete(raw, run_id)
            log.forget_run(raw, thread_id, run_id)
        return Deleted(run_id, "thread.run.deleted")


_INSERT = insert(runs)
_EMPTY_RUN = {column.name: None for column in runs.c}
_ASSISTANT = Statement(
    sa.select(assistants).where(assistants.c.id == sa.bindparam("id"), assistants.c.deleted_at.is_(None))
)


def _with_defaults(raw: Raw, assistant_id: str, given: dict[str, Any]) -> dict[str, Any]:
    assistant = raw.first(_ASSISTANT, {"id": assistant_id})
    if assistant is None:
        raise NotFoundError("assistant", assistant_id)
    defaults = {
        "model": assistant["model"],
        "instructions": assistant["instructions"] or "",
        "tools": assistant["tools"],
        "temperature": assistant["temperature"],
        "top_p": assistant["top_p"],
        "response_format": assistant["response_format"] or "auto",
    }
    return {key: default if given[key] is None else given[key] for key, default in defaults.items()}
