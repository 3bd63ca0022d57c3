"""The messages repository, and the one insert that thread creation shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from threadstore.errors import ConflictError, NotFoundError, ValidationError
from threadstore.events import log
from threadstore.fastsql import Raw, Statement, insert
from threadstore.ids import new_id
from threadstore.openai import content, streams
from threadstore.openai.api import Deleted, Message
from threadstore.openai.models import messages, threads
from threadstore.openai.queries import ACTIVE_RUN, LIVE_ASSISTANT, RUN_OF_THREAD_LOCKED, lock_thread
from threadstore.openai.run_verbs import check_attempt, fence, fence_written
from threadstore.openai.states import MESSAGE, MESSAGE_INCOMPLETE_REASONS, ROLES, RUN
from threadstore.pagination import DEFAULT_LIMIT, Lister, Owner, Page, list_params
from threadstore.records import JsonList
from threadstore.rows import Rows
from threadstore.scope import Scope
from threadstore.transitions import create, create_many, move
from threadstore.types import MessageContentPart, MessageIncompleteReason, NewMessageStatus, Order, Role
from threadstore.validation import check_choice, check_list, check_metadata, check_optional_string, check_string

KIND = "message"
CREATE_STATUSES = ("in_progress", "completed")


@dataclass(frozen=True, slots=True)
class MessageInput:
    """A checked request to write a message."""

    role: str
    content: JsonList
    attachments: JsonList
    metadata: dict[str, str]
    assistant_id: str | None
    run_id: str | None
    status: str

    @classmethod
    def check(
        cls,
        *,
        role: object,
        content: object,
        attachments: object = None,
        metadata: object = None,
        assistant_id: object = None,
        run_id: object = None,
        status: object = "completed",
    ) -> MessageInput:
        """Check every field of a new message.

        Args:
            role: "user" or "assistant".
            content: a string, or a non-empty list of content parts (text, image_file, image_url, refusal).
            attachments: files and the tools they are for (code_interpreter, file_search).
            metadata: up to 16 string pairs.
            assistant_id: the id of the assistant that wrote it, if any.
            run_id: the id of the run that wrote it, if any.
            status: "completed" (the default) or "in_progress".

        Raises:
            ValidationError: an unknown role, status or content type, bad content, attachments
                or metadata.
        """
        return cls(
            role=check_choice("role", role, ROLES),
            content=_content(content),
            attachments=_attachments(attachments),
            metadata=check_metadata(metadata),
            assistant_id=check_optional_string("assistant_id", assistant_id),
            run_id=check_optional_string("run_id", run_id),
            status=check_choice("status", status, CREATE_STATUSES),
        )

    @classmethod
    def from_mapping(cls, fields: Mapping[str, Any]) -> MessageInput:
        """Check a message given as a mapping (as in thread creation).

        Args:
            fields: `role` and `content`, and optionally `attachments` and `metadata`.

        Raises:
            ValidationError: an unknown key, or as `check`.
        """
        unknown = set(fields) - {"role", "content", "attachments", "metadata"}
        if unknown or "role" not in fields or "content" not in fields:
            raise ValidationError(f"A message takes role, content, attachments, metadata; got {sorted(fields)}.")
        return cls.check(**fields)


_content = content.message_content
_attachments = content.attachments


def insert_message(raw: Raw, now: int, thread_id: str, message: MessageInput) -> dict[str, Any]:
    """Write `message` into a thread the caller has locked (queries.lock_thread) and return
    the stored values.

    Raises:
        ConflictError: the thread has an active run and the message is not written by it, or the
            message names a run that has ended.
        NotFoundError: its assistant or run does not exist (the run: not in this thread).
    """
    refuse_while_active(raw, thread_id, unless_run=message.run_id)
    if message.assistant_id is not None and raw.first(LIVE_ASSISTANT, {"id": message.assistant_id}) is None:
        raise NotFoundError("assistant", message.assistant_id)
    if message.run_id is not None:
        run = raw.first(RUN_OF_THREAD_LOCKED, {"id": message.run_id, "thread_id": thread_id})
        if run is None:
            raise NotFoundError("run", message.run_id)
        if run["status"] not in RUN.active:
            raise ConflictError(f"Run {run['id']} is {run['status']}; it can write no more messages.")
    values = _row(now, thread_id, message)
    create(raw, INSERT_MESSAGE, values, now, MESSAGE)
    return values


def refuse_while_active(raw: Raw, thread_id: str, *, unless_run: str | None = None) -> None:
    """The thread lock: no message is added to a thread while it has an active run, but by that run.

    Raises:
        ConflictError: the thread has an active run (other than `unless_run`).
    """
    active = raw.first(ACTIVE_RUN, {"thread_id": thread_id})
    if active is not None and active["id"] != unless_run:
        raise ConflictError(f"Can't add messages to {thread_id} while a run {active['id']} is active.")


def message_inputs(name: str, messages: object) -> list[MessageInput]:
    """Check a list of messages given as mappings (`name` is the argument's, for the errors).

    Raises:
        ValidationError: it is not a list of objects, or a message is bad (see MessageInput.check).
    """
    checked = []
    for index, message in enumerate(check_list(name, messages)):
        # Only the type here: MessageInput checks each field (a whole-JSON walk first would do it twice).
        if not isinstance(message, Mapping):
            raise ValidationError(f"{name}[{index}] must be an object, not {type(message).__name__}.")
        checked.append(MessageInput.from_mapping(message))
    return checked


def _row(now: int, thread_id: str, message: MessageInput) -> dict[str, Any]:
    return {
        "id": new_id("msg"),
        "created_at": now,
        "thread_id": thread_id,
        "status": message.status,
        "incomplete_reason": None,
        "completed_at": now if message.status == "completed" else None,
        "incomplete_at": None,
        "role": message.role,
        "content": message.content,
        "assistant_id": message.assistant_id,
        "run_id": message.run_id,
        "attachments": message.attachments,
        "metadata": message.metadata,
    }


INSERT_MESSAGE = insert(messages)
_ROWS = Rows(messages, KIND, parent="thread_id")
_UPDATE_CONTENT = Statement(
    sa.update(messages)
    .where(messages.c.id == sa.bindparam("id"), messages.c.status == MESSAGE.initial)
    .values(content=sa.bindparam("content", type_=messages.c.content.type))
    .returning(*messages.c)
)
_LOCKED = Statement(
    sa.select(messages.c.status, messages.c.content).where(messages.c.id == sa.bindparam("id")).with_for_update()
)


def _with_text(parts: list[Any], text: str) -> tuple[list[Any], int]:
    """`parts` with `text` appended to the last part if it is text, else as a new part; and the
    index of the part that holds it."""
    if parts and parts[-1]["type"] == "text":
        last = parts[-1]
        joined = {**last, "text": {**last["text"], "value": last["text"]["value"] + text}}
        return [*parts[:-1], joined], len(parts) - 1
    return [*parts, {"type": "text", "text": {"value": text, "annotations": []}}], len(parts)


_LIST = Lister(
    sa.select(messages), messages, scope=("thread_id", "run_id"), owner=Owner(threads, "thread", "thread_id")
)


class Messages:
    """Create, read, update and delete messages, and move them through their lifecycle:
    in_progress → completed | incomplete."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def create(
        self,
        thread_id: str,
        *,
        role: Role,
        content: str | Sequence[MessageContentPart],
        attachments: JsonList | None = None,
        metadata: dict[str, str] | None = None,
        assistant_id: str | None = None,
        run_id: str | None = None,
        status: NewMessageStatus = "completed",
        attempt: int | None = None,
    ) -> Message:
        """Add a message to a thread.

        Args:
            thread_id: the thread.
            role: "user" or "assistant".
            content: a string, or a list of content parts (text, image_file, image_url, refusal).
            attachments: files and the tools they are for.
            metadata: up to 16 string pairs.
            assistant_id: the assistant that wrote it, if any.
            run_id: the run that wrote it, if any (it must be in this thread).
            status: "completed" (the default) or "in_progress" for a message still being written.
            attempt: with `run_id`, that run's `attempt` as its worker's claim returned it; if
                given, a stale one is refused.

        Raises:
            ValidationError: a field breaks the API's rules, or `attempt` is given without
                `run_id`; nothing is written.
            NotFoundError: the thread, assistant or run does not exist.
            ConflictError: the thread has an active run that is not writing this message, the
                run named has ended, or `attempt` is stale.
        """
        message = MessageInput.check(
            role=role,
            content=content,
            attachments=attachments,
            metadata=metadata,
            assistant_id=assistant_id,
            run_id=run_id,
            status=status,
        )
        claim = check_attempt(attempt)
        if claim is not None and message.run_id is None:
            raise ValidationError("attempt is given only with the run_id of the run whose worker writes.")
        with self._scope.write() as raw:
            lock_thread(raw, thread_id)
            if message.run_id is not None:
                fence(raw, message.run_id, claim)
            return Message.from_row(insert_message(raw, self._scope.now(), thread_id, message))

    def create_many(self, thread_id: str, messages: Sequence[Mapping[str, Any]]) -> list[Message]:
        """Add many messages to a thread at once (an import), in their order, in one transaction.
        Each is a mapping of `role`, `content`, and optionally `attachments` and `metadata`, and is
        checked exactly as `create` checks it.

        Args:
            thread_id: the thread.
            messages: the messages, oldest first.

        Raises:
            ValidationError: any message breaks the API's rules; nothing is written.
            NotFoundError: the thread does not exist.
            ConflictError: the thread has an active run.
        """
        checked = message_inputs("messages", messages)
        with self._scope.write() as raw:
            lock_thread(raw, thread_id)
            refuse_while_active(raw, thread_id)
            now = self._scope.now()
            rows = [_row(now, thread_id, message) for message in checked]
            create_many(raw, INSERT_MESSAGE, rows, now, MESSAGE)
        return [Message.from_row(row) for row in rows]

    def get(self, message_id: str, *, thread_id: str | None = None, for_update: bool = False) -> Message:
        """The message with this id (in this thread, if `thread_id` is given). In a transaction,
        `for_update` locks it until the transaction ends.

        Args:
            message_id: the message.
            thread_id: the thread it must be in, if given.
            for_update: lock it until the transaction ends.

        Raises:
            NotFoundError: there is none.
        """
        with self._scope.read() as raw:
            return Message.from_row(_ROWS.get(raw, message_id, thread_id, for_update=for_update))

    def list(
        self,
        thread_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
        run_id: str | None = None,
    ) -> Page[Message]:
        """A page of a thread's messages, newest first by default; only a run's if `run_id`.

        Args:
            thread_id: the thread.
            limit: the most messages a page holds, 1 to 100 (default 20).
            order: "asc" or "desc" (the default), by creation time.
            after: the id of a message in this list; the page holds the messages after it.
            before: the id of a message in this list; the page holds the messages before it.
            run_id: the run whose messages to list, if given.

        Raises:
            ValidationError: a bad limit, order or cursor.
            NotFoundError: the thread does not exist.
        """
        params = list_params(limit, order, after, before)
        scope = {"thread_id": thread_id, "run_id": check_optional_string("run_id", run_id)}
        with self._scope.read() as raw:
            return _LIST.page(raw, scope, params, Message.from_row)

    def update(self, message_id: str, *, metadata: dict[str, str] | None, thread_id: str | None = None) -> Message:
        """Replace a message's metadata.

        Args:
            message_id: the message.
            metadata: the new metadata, up to 16 string pairs; None clears it.
            thread_id: the thread it must be in, if given.

        Raises:
            ValidationError: bad metadata; nothing is written.
            NotFoundError: there is no such message (in this thread).
        """
        values = {"metadata": check_metadata(metadata)}
        with self._scope.write() as raw:
            return Message.from_row(_ROWS.update(raw, message_id, values, thread_id))

    def complete(self, message_id: str, *, attempt: int | None = None) -> Message:
        """in_progress → completed, stamping completed_at.

        Args:
            message_id: the message.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: a bad attempt, or one for a message no run wrote.
            NotFoundError: no such message. InvalidTransitionError: it is not in progress.
            ConflictError: another writer moved it first, or `attempt` is stale.
        """
        claim = check_attempt(attempt)
        with self._scope.write() as raw:
            fence_written(raw, messages, KIND, message_id, claim)
            return Message.from_row(move(raw, messages, MESSAGE, "complete", message_id, self._scope.now()))

    def mark_incomplete(
        self, message_id: str, *, reason: MessageIncompleteReason, attempt: int | None = None
    ) -> Message:
        """in_progress → incomplete, stamping incomplete_at, with `incomplete_details.reason`
        (content_filter, max_tokens, run_cancelled, run_expired or run_failed).

        Args:
            message_id: the message.
            reason: content_filter, max_tokens, run_cancelled, run_expired or run_failed.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: an unknown reason, a bad attempt, or one for a message no run wrote.
            NotFoundError: no such message. InvalidTransitionError: it is not in progress.
            ConflictError: another writer moved it first, or `attempt` is stale.
        """
        values = {"incomplete_reason": check_choice("reason", reason, MESSAGE_INCOMPLETE_REASONS)}
        claim = check_attempt(attempt)
        with self._scope.write() as raw:
            fence_written(raw, messages, KIND, message_id, claim)
            now = self._scope.now()
            return Message.from_row(move(raw, messages, MESSAGE, "mark_incomplete", message_id, now, values=values))

    def update_content(
        self, message_id: str, *, content: str | Sequence[MessageContentPart], attempt: int | None = None
    ) -> Message:
        """Replace the content of a message that is still in progress (as a reply streams in).

        Args:
            message_id: the message.
            content: the new content: a string, or a non-empty list of content parts, as in `create`.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: bad content, a bad attempt, or one for a message no run wrote; nothing
                is written.
            NotFoundError: no such message.
            ConflictError: the message is no longer in progress, or `attempt` is stale.
        """
        parts = _content(content)
        claim = check_attempt(attempt)
        with self._scope.write() as raw:
            fence_written(raw, messages, KIND, message_id, claim)
            row = raw.first(_UPDATE_CONTENT, {"id": message_id, "content": parts})
            if row is None:
                status = _ROWS.get(raw, message_id)["status"]
                raise ConflictError(f"Message {message_id} is {status}; its content changes only while in_progress.")
            return Message.from_row(row)

    def append_text(self, message_id: str, *, text: str, attempt: int | None = None) -> Message:
        """Append streamed `text` to a message in progress, and write its `thread.message.delta`.

        The text joins the message's last content part when that is text, else starts a new text
        part; the delta names that part's index, as the API's stream does.

        Args:
            message_id: the message.
            text: the text to append, not empty.
            attempt: the run's `attempt` as its worker's claim returned it; if given, a stale one is
                refused.

        Raises:
            ValidationError: `text` is not a non-empty string, a bad attempt, or one for a message
                no run wrote; nothing is written.
            NotFoundError: no such message.
            ConflictError: the message is no longer in progress, or `attempt` is stale.
        """
        piece = check_string("text", text)
        if not piece:
            raise ValidationError("text must not be empty.")
        claim = check_attempt(attempt)
        with self._scope.write() as raw:
            fence_written(raw, messages, KIND, message_id, claim)
            found = raw.first(_LOCKED, {"id": message_id})
            if found is None:
                raise NotFoundError("message", message_id)
            if found["status"] != MESSAGE.initial:
                raise ConflictError(
                    f"Message {message_id} is {found['status']}; text is appended only while in_progress."
                )
            parts, index = _with_text(found["content"], piece)
            row = raw.first(_UPDATE_CONTENT, {"id": message_id, "content": parts})
            assert row is not None  # the row is locked and in progress
            delta = streams.message_delta(message_id, index, piece)
            log.append(raw, "thread.message.delta", delta, row["thread_id"], row["run_id"], self._scope.now())
            return Message.from_row(row)

    def delete(self, message_id: str, *, thread_id: str | None = None) -> Deleted:
        """Delete a message.

        Args:
            message_id: the message.
            thread_id: the thread it must be in, if given.

        Raises:
            NotFoundError: there is no such message (in this thread).
        """
        with self._scope.write() as raw:
            _ROWS.delete(raw, message_id, thread_id)
        return Deleted(message_id, "thread.message.deleted")
