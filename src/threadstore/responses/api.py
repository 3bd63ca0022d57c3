"""The objects the Responses and Conversations repositories return, and their exact API JSON.

Each is a frozen, detached value, as in openai/api.py. A response's output items are rows of
their own (response_items); `Response.from_row` takes them beside the response's row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from threadstore.records import Json, Row, row_reader
from threadstore.responses.items import Item


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation (`conv_…`)."""

    id: str
    created_at: int
    metadata: dict[str, str]

    @classmethod
    def from_row(cls, m: Row) -> Conversation:
        """Build from a row of the conversations table."""
        return cls(m["id"], m["created_at"], m["metadata"])

    def to_api(self) -> Json:
        """The API's conversation object."""
        return {"id": self.id, "object": "conversation", "created_at": self.created_at, "metadata": self.metadata}


@dataclass(frozen=True, slots=True)
class Response:
    """A response (`resp_…`)."""

    id: str
    created_at: int
    status: str
    completed_at: int | None
    model: str
    instructions: str | None
    previous_response_id: str | None
    conversation_id: str | None
    background: bool
    usage: Json | None
    error_code: str | None
    error_message: str | None
    incomplete_reason: str | None
    metadata: dict[str, str]
    tools: list[Json]
    tool_choice: Any
    temperature: float | None
    top_p: float | None
    max_output_tokens: int | None
    parallel_tool_calls: bool
    text: Json
    reasoning: Json | None
    truncation: str
    store: bool
    user: str | None
    output: list[Item] = field(default_factory=list)

    @classmethod
    def from_row(cls, m: Row, output: list[Item] | None = None) -> Response:
        """Build from a row of the responses table and its output items, in order."""
        arguments = list(_RESPONSE_ARGS(m))
        arguments[-1] = output or []
        # Each of __init__'s 26 assignments is a call to object.__setattr__ (the dataclass is
        # frozen); the slots' own setters, in one loop, cost a third as much.
        response = object.__new__(cls)
        for set_field, value in zip(_SET_FIELDS, arguments, strict=True):
            set_field(response, value)
        return response

    @property
    def output_text(self) -> str:
        """The text of every output_text part of its output messages, joined."""
        return "".join(
            part["text"]
            for item in self.output
            if item.type == "message"
            for part in item.data["content"]
            if part.get("type") == "output_text"
        )

    def to_api(self) -> Json:
        """The API's response object."""
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status,
            "background": self.background,
            "completed_at": self.completed_at,
            "conversation": None if self.conversation_id is None else {"id": self.conversation_id},
            "error": None if self.error_code is None else {"code": self.error_code, "message": self.error_message},
            "incomplete_details": None if self.incomplete_reason is None else {"reason": self.incomplete_reason},
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "metadata": self.metadata,
            "model": self.model,
            "output": [item.to_api() for item in self.output],
            "parallel_tool_calls": self.parallel_tool_calls,
            "previous_response_id": self.previous_response_id,
            "reasoning": self.reasoning,
            "store": self.store,
            "temperature": self.temperature,
            "text": self.text,
            "tool_choice": self.tool_choice,
            "tools": self.tools,
            "top_p": self.top_p,
            "truncation": self.truncation,
            "usage": self.usage,
            "user": self.user,
        }


_RESPONSE_ARGS = row_reader(Response, {"output": lambda m: None})
_SET_FIELDS = tuple(Response.__dict__[each.name].__set__ for each in fields(Response))
