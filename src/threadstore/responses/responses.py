"""The responses repository (`store.responses`): creation, reads, a response's input items and
its context. The lifecycle verbs live beside it (verbs.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from threadstore.errors import NotFoundError, ValidationError
from threadstore.events import log
from threadstore.fastsql import Raw, word
from threadstore.ids import new_id
from threadstore.openai.api import Deleted
from threadstore.pagination import DEFAULT_LIMIT, Lister, Owner, Page, list_params
from threadstore.records import Json, JsonList
from threadstore.responses.api import Response
from threadstore.responses.context import CONTEXT
from threadstore.responses.items import Item, input_items
from threadstore.responses.models import response_items, responses
from threadstore.responses.queries import (
    INSERT_RESPONSE,
    INSERT_RESPONSE_ITEM,
    RESPONSES,
    output_of,
    refuse_busy,
    response_item_rows,
    take_positions,
)
from threadstore.responses.states import APPENDING, RESPONSE, TRUNCATIONS
from threadstore.responses.streams import CREATED_EVENTS
from threadstore.responses.verbs import ResponseVerbs
from threadstore.scope import Scope
from threadstore.transitions import create
from threadstore.types import Order
from threadstore.validation import (
    MAX_INT32,
    check_bool,
    check_choice,
    check_list,
    check_mapping,
    check_metadata,
    check_optional_int,
    check_optional_number,
    check_optional_string,
    check_string,
)

_INPUT_ITEMS = Lister(
    sa.select(response_items),
    response_items,
    scope=("response_id",),
    where=[response_items.c.kind == word("input")],
    owner=Owner(responses, "response", "response_id"),
    key=("position",),
)
TOOL_CHOICES = ("none", "auto", "required")


def _tools(tools: object) -> JsonList:
    if tools is None:
        return []
    checked = [check_mapping(f"tools[{i}]", tool) for i, tool in enumerate(check_list("tools", tools))]
    for index, tool in enumerate(checked):
        check_string(f"tools[{index}].type", tool.get("type"))
    return checked


def _tool_choice(value: object) -> Any:
    if isinstance(value, str):
        return check_choice("tool_choice", value, TOOL_CHOICES)
    choice = check_mapping("tool_choice", value)
    check_string("tool_choice.type", choice.get("type"))
    return choice


def _conversation_id(value: object) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return check_optional_string("conversation", value)


class InputItems:
    """`store.responses.input_items`: the items a response was given."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def list(
        self,
        response_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[Item]:
        """A page of a response's input items, newest first by default.

        Args:
            response_id: the response.
            limit: the most items a page holds, 1 to 100 (default 20).
            order: "asc" or "desc" (the default), by position.
            after: the id of an input item of this response; the page holds the items after it.
            before: the id of an input item of this response; the page holds the items before it.

        Raises:
            ValidationError: a bad limit, order or cursor.
            NotFoundError: there is no such response.
        """
        params = list_params(limit, order, after, before)
        with self._scope.read() as raw:
            return _INPUT_ITEMS.page(raw, {"response_id": response_id}, params, Item.from_row)


class Responses(ResponseVerbs):
    """Create, read and delete responses, list their input items, assemble their context, and
    move them through their lifecycle (ResponseVerbs)."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self.input_items = InputItems(scope)

    def create(
        self,
        *,
        model: str,
        input: str | JsonList,
        instructions: str | None = None,
        conversation: str | Json | None = None,
        previous_response_id: str | None = None,
        background: bool = False,
        metadata: dict[str, str] | None = None,
        tools: JsonList | None = None,
        tool_choice: Any = "auto",
        temperature: float | None = None,
        top_p: float | None = None,
        max_output_tokens: int | None = None,
        parallel_tool_calls: bool = True,
        text: Json | None = None,
        reasoning: Json | None = None,
        truncation: str = "disabled",
        store: bool = True,
        user: str | None = None,
    ) -> Response:
        """Create a response: `queued` for a worker to claim when `background`, else
        `in_progress` for the caller to run at once.

        Args:
            model: the model's name.
            input: a string (one user message) or a list of items.
            instructions: a system message for this response only.
            conversation: the conversation (its id, or `{"id": ...}`) it reads and appends to.
            previous_response_id: the response it follows (not with `conversation`).
            background: queue it for a worker (`claim_next`); only these can be cancelled.
            metadata: up to 16 string pairs.
            tools: the tools the model may call, each `{"type": ...}`.
            tool_choice: "none", "auto" (the default), "required", or a `{"type": ...}` object.
            temperature: between 0 and 2.
            top_p: between 0 and 1.
            max_output_tokens: at least 16; None for no limit.
            parallel_tool_calls: whether the model may call tools in parallel (default True).
            text: the text output's configuration (default `{"format": {"type": "text"}}`).
            reasoning: the reasoning configuration.
            truncation: "disabled" (the default) or "auto".
            store: whether the response is to be kept (default True).
            user: an end user's identifier.

        Raises:
            ValidationError: a field breaks the API's rules; nothing is written.
            NotFoundError: the conversation or the previous response does not exist.
            ConflictError: it would be a second response in progress on its conversation.
        """
        conversation_id = _conversation_id(conversation)
        previous = check_optional_string("previous_response_id", previous_response_id)
        if conversation_id is not None and previous is not None:
            raise ValidationError("conversation and previous_response_id cannot be used together.")
        items = input_items(input)
        status = "queued" if check_bool("background", background) else "in_progress"
        values: dict[str, Any] = {
            "model": check_string("model", model),
            "instructions": check_optional_string("instructions", instructions),
            "previous_response_id": previous,
            "conversation_id": conversation_id,
            "background": background,
            "metadata": check_metadata(metadata),
            "tools": _tools(tools),
            "tool_choice": _tool_choice(tool_choice),
            "temperature": check_optional_number("temperature", temperature, minimum=0, maximum=2),
            "top_p": check_optional_number("top_p", top_p, minimum=0, maximum=1),
            "max_output_tokens": check_optional_int(
                "max_output_tokens", max_output_tokens, minimum=16, maximum=MAX_INT32
            ),
            "parallel_tool_calls": check_bool("parallel_tool_calls", parallel_tool_calls),
            "text": {"format": {"type": "text"}} if text is None else check_mapping("text", text),
            "reasoning": None if reasoning is None else check_mapping("reasoning", reasoning),
            "truncation": check_choice("truncation", truncation, TRUNCATIONS),
            "store": check_bool("store", store),
            "user": check_optional_string("user", user),
            "status": status,
            "input_count": len(items),
            "output_count": 0,
            "sequence_number": CREATED_EVENTS,
        }
        with self._scope.write() as raw:
            values["context_position"] = self._context_position(raw, conversation_id, status)
            if previous is not None:
                RESPONSES.require(raw, previous)
            now = self._scope.now()
            values.update(id=new_id("resp"), created_at=now)
            row = {**_EMPTY, **values}
            create(raw, INSERT_RESPONSE, row, now, RESPONSE)
            raw.execute_many(INSERT_RESPONSE_ITEM, response_item_rows(row["id"], "input", 0, items))
        return Response.from_row(row)

    def _context_position(self, raw: Raw, conversation_id: str | None, status: str) -> int | None:
        """The last position of the conversation a response created in `status` sees: set now
        for one in progress, when it starts for one queued. Locks the conversation's row."""
        if conversation_id is None:
            return None
        start = take_positions(raw, conversation_id, 0)
        if start is None:
            raise NotFoundError("conversation", conversation_id)
        if status != APPENDING:
            return None
        refuse_busy(raw, conversation_id)
        return start - 1

    def get(self, response_id: str) -> Response:
        """The response with this id, with its output.

        Raises:
            NotFoundError: there is none.
        """
        with self._scope.read() as raw:
            row = RESPONSES.get(raw, response_id)
            return Response.from_row(row, output_of(raw, row))

    def delete(self, response_id: str) -> Deleted:
        """Delete a response, its items and its events. Responses that followed it keep their
        place, without a previous response.

        Raises:
            NotFoundError: there is no such response.
        """
        with self._scope.write() as raw:
            RESPONSES.delete(raw, response_id)
            log.forget_thread(raw, response_id)
        return Deleted(response_id, "response.deleted")

    def context(self, response_id: str) -> list[Item]:
        """Every item the model sees for a response, in order: the items of its conversation (up
        to the last one it saw), or those of its `previous_response_id` chain (each earlier
        response's input and output, oldest first), then its own input. One query.

        Raises:
            NotFoundError: there is no such response.
        """
        with self._scope.read() as raw:
            rows = raw.rows(CONTEXT, {"id": check_string("response_id", response_id)})
            if not rows:
                RESPONSES.require(raw, response_id)
        return [Item.from_row(row) for row in rows]


_EMPTY = {column.name: None for column in responses.c}
