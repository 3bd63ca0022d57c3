"""The assistants repository."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from threadstore.fastsql import insert
from threadstore.ids import new_id
from threadstore.openai import content
from threadstore.openai.api import Assistant, Deleted
from threadstore.openai.models import assistants
from threadstore.pagination import DEFAULT_LIMIT, Lister, Page, list_params
from threadstore.records import JsonList
from threadstore.rows import Rows
from threadstore.scope import Scope
from threadstore.transitions import create
from threadstore.types import Order
from threadstore.validation import (
    UNSET,
    check_metadata,
    check_optional_number,
    check_optional_string,
    check_string,
)

_live = assistants.c.deleted_at.is_(None)
_columns = [c for c in assistants.c if c.name != "deleted_at"]
_ROWS = Rows(assistants, "assistant", where=[_live], columns=_columns)
_INSERT = insert(assistants)
_EMPTY = {column.name: None for column in assistants.c}


def _name(value: Any) -> str | None:
    return check_optional_string("name", value, max_length=256)


def _description(value: Any) -> str | None:
    return check_optional_string("description", value, max_length=512)


def _model(value: Any) -> str:
    return check_string("model", value)


def _instructions(value: Any) -> str | None:
    return check_optional_string("instructions", value, max_length=256_000)


def _temperature(value: Any) -> float | None:
    return check_optional_number("temperature", value, minimum=0, maximum=2)


def _top_p(value: Any) -> float | None:
    return check_optional_number("top_p", value, minimum=0, maximum=1)


def _response_format(value: Any) -> Any:
    return None if value is None else content.response_format(value)


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "description": _description,
    "model": _model,
    "instructions": _instructions,
    "tools": content.tools,
    "tool_resources": content.tool_resources,
    "metadata": check_metadata,
    "temperature": _temperature,
    "top_p": _top_p,
    "response_format": _response_format,
}


def _fields(**given: Any) -> dict[str, Any]:
    """Check the fields a client may set; those left UNSET are not returned."""
    return {key: _CHECKS[key](value) for key, value in given.items() if value is not UNSET}


_LIST = Lister(sa.select(*_columns), assistants, where=[_live])


class Assistants:
    """Create, read, update and delete assistants."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def create(
        self,
        *,
        model: str,
        name: str | None = None,
        description: str | None = None,
        instructions: str | None = None,
        tools: JsonList | None = None,
        tool_resources: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        response_format: Any = "auto",
    ) -> Assistant:
        """Create an assistant.

        Args:
            model: the model's name.
            name: at most 256 characters.
            description: at most 512 characters.
            instructions: the system instructions, at most 256,000 characters.
            tools: code_interpreter, file_search and function tools (a function needs a name of at most 64
                characters).
            tool_resources: code_interpreter `file_ids` and file_search `vector_store_ids`.
            metadata: up to 16 string pairs.
            temperature: between 0 and 2.
            top_p: between 0 and 1.
            response_format: "auto" (the default), a `{"type": "text" | "json_object" | "json_schema", ...}`
                object, or None.

        Raises:
            ValidationError: a field breaks the API's rules; nothing is written.
        """
        values = _fields(
            model=model,
            name=name,
            description=description,
            instructions=instructions,
            tools=tools,
            tool_resources=tool_resources,
            metadata=metadata,
            temperature=temperature,
            top_p=top_p,
            response_format=response_format,
        )
        with self._scope.write() as raw:
            now = self._scope.now()
            values.update(id=new_id("asst"), created_at=now)
            create(raw, _INSERT, {**_EMPTY, **values}, now)
        return Assistant.from_row(values)

    def get(self, assistant_id: str, *, for_update: bool = False) -> Assistant:
        """The assistant with this id. In a transaction, `for_update` locks it until the
        transaction ends.

        Args:
            assistant_id: the assistant.
            for_update: lock it until the transaction ends.

        Raises:
            NotFoundError: there is none (or it was deleted).
        """
        with self._scope.read() as raw:
            return Assistant.from_row(_ROWS.get(raw, assistant_id, for_update=for_update))

    def list(
        self, *, limit: int = DEFAULT_LIMIT, order: Order = "desc", after: str | None = None, before: str | None = None
    ) -> Page[Assistant]:
        """A page of assistants, newest first by default.

        Args:
            limit: the most assistants a page holds, 1 to 100 (default 20).
            order: "asc" or "desc" (the default), by creation time.
            after: the id of an assistant in this list; the page holds the assistants after it.
            before: the id of an assistant in this list; the page holds the assistants before it.

        Raises:
            ValidationError: a bad limit, order or cursor.
        """
        params = list_params(limit, order, after, before)
        with self._scope.read() as raw:
            return _LIST.page(raw, {}, params, Assistant.from_row)

    def update(
        self,
        assistant_id: str,
        *,
        model: str = UNSET,
        name: str | None = UNSET,
        description: str | None = UNSET,
        instructions: str | None = UNSET,
        tools: JsonList | None = UNSET,
        tool_resources: dict[str, Any] | None = UNSET,
        metadata: dict[str, str] | None = UNSET,
        temperature: float | None = UNSET,
        top_p: float | None = UNSET,
        response_format: Any = UNSET,
    ) -> Assistant:
        """Change the fields given; the others keep their values. `metadata` replaces the map.

        Args:
            assistant_id: the assistant.
            model: the model's name.
            name: at most 256 characters; None clears it.
            description: at most 512 characters; None clears it.
            instructions: at most 256,000 characters; None clears them.
            tools: as in `create`; None clears them.
            tool_resources: as in `create`; None clears them.
            metadata: up to 16 string pairs, replacing the whole map; None clears it.
            temperature: between 0 and 2; None clears it.
            top_p: between 0 and 1; None clears it.
            response_format: as in `create`; None clears it.

        Raises:
            ValidationError: a field breaks the API's rules; nothing is written.
            NotFoundError: there is no such assistant.
        """
        values = _fields(
            model=model,
            name=name,
            description=description,
            instructions=instructions,
            tools=tools,
            tool_resources=tool_resources,
            metadata=metadata,
            temperature=temperature,
            top_p=top_p,
            response_format=response_format,
        )
        with self._scope.write() as raw:
            row = _ROWS.update(raw, assistant_id, values) if values else _ROWS.get(raw, assistant_id)
            return Assistant.from_row(row)

    def delete(self, assistant_id: str) -> Deleted:
        """Delete an assistant. Its runs, steps and messages keep their `assistant_id`.

        Args:
            assistant_id: the assistant.

        Raises:
            NotFoundError: there is no such assistant.
        """
        with self._scope.write() as raw:
            _ROWS.update(raw, assistant_id, {"deleted_at": self._scope.now()})
        return Deleted(assistant_id, "assistant.deleted")
