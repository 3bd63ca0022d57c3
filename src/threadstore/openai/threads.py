"""The threads repository."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Unpack

import sqlalchemy as sa

from threadstore.errors import ValidationError
from threadstore.events import log
from threadstore.fastsql import insert
from threadstore.ids import new_id
from threadstore.openai import content
from threadstore.openai.api import Deleted, Run, Thread
from threadstore.openai.messages import insert_message, message_inputs
from threadstore.openai.models import threads
from threadstore.openai.runs import RunOptions, Runs
from threadstore.pagination import DEFAULT_LIMIT, Lister, Page, list_params
from threadstore.rows import Rows
from threadstore.scope import Scope, TransactionScope
from threadstore.transitions import create
from threadstore.types import Order
from threadstore.validation import UNSET, check_metadata

_ROWS = Rows(threads, "thread")


_LIST = Lister(sa.select(threads), threads)
INSERT_THREAD = insert(threads)


class Threads:
    """Create, read, update and delete threads."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def create(
        self,
        *,
        metadata: dict[str, str] | None = None,
        tool_resources: dict[str, Any] | None = None,
        messages: Sequence[dict[str, Any]] | None = None,
    ) -> Thread:
        """Create a thread, with its first messages if `messages` are given (each a mapping of
        `role`, `content`, and optionally `attachments` and `metadata`).

        Args:
            metadata: up to 16 string pairs.
            tool_resources: code_interpreter `file_ids` and file_search `vector_store_ids`.
            messages: its first messages, oldest first.

        Raises:
            ValidationError: bad metadata, tool resources or messages; nothing is written.
        """
        values: dict[str, Any] = {
            "metadata": check_metadata(metadata),
            "tool_resources": content.tool_resources(tool_resources),
        }
        initial = message_inputs("messages", [] if messages is None else messages)
        with self._scope.write() as raw:
            now = self._scope.now()
            values.update(id=new_id("thread"), created_at=now)
            create(raw, INSERT_THREAD, values, now)
            for message in initial:
                insert_message(raw, now, values["id"], message)
        return Thread.from_row(values)

    def create_and_run(
        self, *, assistant_id: str, thread: Mapping[str, Any] | None = None, **run: Unpack[RunOptions]
    ) -> Run:
        """Create a thread (with its first messages) and queue a run on it, in one transaction:
        the API's create-thread-and-run.

        Args:
            assistant_id: the assistant to run.
            thread: the thread's `messages`, `metadata` and `tool_resources`, as for `create`.
            **run: the run's options, as for `runs.create` (model, instructions, tools, metadata,
                expires_in, temperature, top_p, max_prompt_tokens, max_completion_tokens,
                truncation_strategy, tool_choice, parallel_tool_calls, response_format,
                reasoning_effort, include).

        Raises:
            ValidationError: a bad field of the thread or the run; nothing is written.
            NotFoundError: the assistant does not exist; nothing is written.
        """
        thread = {} if thread is None else thread
        if not isinstance(thread, Mapping):
            raise ValidationError(f"thread must be an object, not {type(thread).__name__}.")
        fields = dict(thread)
        unknown = set(fields) - {"messages", "metadata", "tool_resources"}
        if unknown:
            raise ValidationError(f"thread takes messages, metadata, tool_resources; got {sorted(unknown)}.")
        with self._scope.write() as raw:
            scope = TransactionScope(raw, self._scope.clock)
            created = Threads(scope).create(**fields)
            return Runs(scope).create(created.id, assistant_id=assistant_id, **run)

    def get(self, thread_id: str, *, for_update: bool = False) -> Thread:
        """The thread with this id. In a transaction, `for_update` locks it until the transaction
        ends, for a read-modify-write (SELECT … FOR UPDATE on PostgreSQL; a SQLite write
        transaction is exclusive already).

        Args:
            thread_id: the thread.
            for_update: lock it until the transaction ends.

        Raises:
            NotFoundError: there is none.
        """
        with self._scope.read() as raw:
            return Thread.from_row(_ROWS.get(raw, thread_id, for_update=for_update))

    def list(
        self, *, limit: int = DEFAULT_LIMIT, order: Order = "desc", after: str | None = None, before: str | None = None
    ) -> Page[Thread]:
        """A page of threads, newest first by default.

        Args:
            limit: the most threads a page holds, 1 to 100 (default 20).
            order: "asc" or "desc" (the default), by creation time.
            after: the id of a thread in this list; the page holds the threads after it.
            before: the id of a thread in this list; the page holds the threads before it.

        Raises:
            ValidationError: a bad limit, order or cursor.
        """
        params = list_params(limit, order, after, before)
        with self._scope.read() as raw:
            return _LIST.page(raw, {}, params, Thread.from_row)

    def update(
        self,
        thread_id: str,
        *,
        metadata: dict[str, str] | None = UNSET,
        tool_resources: dict[str, Any] | None = UNSET,
    ) -> Thread:
        """Change the fields given. `metadata` replaces the whole map.

        Args:
            thread_id: the thread.
            metadata: up to 16 string pairs, replacing the whole map; None clears it.
            tool_resources: code_interpreter `file_ids` and file_search `vector_store_ids`; None clears them.

        Raises:
            ValidationError: bad metadata or tool resources; nothing is written.
            NotFoundError: there is no such thread.
        """
        values: dict[str, Any] = {}
        if metadata is not UNSET:
            values["metadata"] = check_metadata(metadata)
        if tool_resources is not UNSET:
            values["tool_resources"] = content.tool_resources(tool_resources)
        with self._scope.write() as raw:
            row = _ROWS.update(raw, thread_id, values) if values else _ROWS.get(raw, thread_id)
            return Thread.from_row(row)

    def delete(self, thread_id: str) -> Deleted:
        """Delete a thread and everything in it: messages, runs, run steps.

        Args:
            thread_id: the thread.

        Raises:
            NotFoundError: there is no such thread.
        """
        with self._scope.write() as raw:
            _ROWS.delete(raw, thread_id)
            log.forget_thread(raw, thread_id)
        return Deleted(thread_id, "thread.deleted")
