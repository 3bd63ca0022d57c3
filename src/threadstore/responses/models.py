"""SQLModel tables of the Responses and Conversations API. Timestamps are integer Unix seconds.

A conversation's items are ordered by `position`, handed out in the writing transaction from the
conversation's `next_position` (never by clock), so items written in one call keep their order.
A response's own items (its input, then its output) are rows of `response_items`, in the order of
their `position` within the response; a later response names an earlier one by
`previous_response_id` and copies none of its items.
"""

from typing import Any

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, text
from sqlmodel import Field

from threadstore.responses.states import (
    APPENDING,
    ERROR_CODES,
    INCOMPLETE_REASONS,
    ITEM_KINDS,
    RESPONSE,
    TRUNCATIONS,
)
from threadstore.schema import Base, json_column, one_of, status_checks, table_of


def _seconds(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(BigInteger, nullable=nullable))


def _count() -> Any:
    return Field(sa_column=Column(BigInteger, nullable=False))


class ConversationRow(Base, table=True):
    """A conversation (`conv_…`). `next_position` is the position its next item takes."""

    __tablename__ = "threadstore_conversations"

    id: str = Field(primary_key=True)
    created_at: int = _seconds(nullable=False)
    metadata_: dict[str, str] = Field(sa_column=json_column("metadata", nullable=False))
    next_position: int = _count()


class ConversationItemRow(Base, table=True):
    """An item of a conversation, at its position; `data` is the item's whole JSON."""

    __tablename__ = "threadstore_conversation_items"
    __table_args__ = (
        PrimaryKeyConstraint("conversation_id", "position"),
        Index(None, "conversation_id", "id", unique=True),
    )

    conversation_id: str = Field(
        sa_column=Column(String, ForeignKey("threadstore_conversations.id", ondelete="CASCADE"), nullable=False)
    )
    position: int = _count()
    id: str
    type: str
    created_at: int = _seconds(nullable=False)
    data: dict[str, Any] = Field(sa_column=json_column("data", nullable=False))


_APPENDING = f"status = '{APPENDING}'"


class ResponseRow(Base, table=True):
    """A response (`resp_…`). At most one response per conversation is in progress (partial
    unique index). `sequence_number` counts the events it has streamed; `context_position` is the
    last position of its conversation that it sees (set when it starts)."""

    __tablename__ = "threadstore_responses"
    __table_args__ = (
        Index(None, "status", "created_at", "id"),
        Index(None, "previous_response_id"),
        Index(None, "conversation_id"),
        Index(
            "uq_threadstore_responses_one_in_progress_per_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text(_APPENDING),
            postgresql_where=text(_APPENDING),
        ),
        one_of("status", RESPONSE.statuses, "status"),
        one_of("error_code", ERROR_CODES, "error_code"),
        one_of("incomplete_reason", INCOMPLETE_REASONS, "incomplete_reason"),
        one_of("truncation", TRUNCATIONS, "truncation"),
        *status_checks(RESPONSE),
    )

    id: str = Field(primary_key=True)
    created_at: int = _seconds(nullable=False)
    status: str
    completed_at: int | None = _seconds()
    model: str
    instructions: str | None = Field(default=None)
    previous_response_id: str | None = Field(
        default=None,
        sa_column=Column(String, ForeignKey("threadstore_responses.id", ondelete="SET NULL"), nullable=True),
    )
    conversation_id: str | None = Field(
        default=None,
        sa_column=Column(String, ForeignKey("threadstore_conversations.id", ondelete="SET NULL"), nullable=True),
    )
    background: bool
    usage: dict[str, Any] | None = Field(default=None, sa_column=json_column("usage", nullable=True))
    error_code: str | None = Field(default=None)
    error_message: str | None = Field(default=None)
    incomplete_reason: str | None = Field(default=None)
    metadata_: dict[str, str] = Field(sa_column=json_column("metadata", nullable=False))
    tools: list[Any] = Field(sa_column=json_column("tools", nullable=False))
    tool_choice: Any = Field(sa_column=json_column("tool_choice", nullable=False))
    temperature: float | None = Field(default=None)
    top_p: float | None = Field(default=None)
    max_output_tokens: int | None = Field(default=None)
    parallel_tool_calls: bool
    text: dict[str, Any] = Field(sa_column=json_column("text", nullable=False))
    reasoning: dict[str, Any] | None = Field(default=None, sa_column=json_column("reasoning", nullable=True))
    truncation: str
    store: bool
    user: str | None = Field(default=None)
    input_count: int = _count()
    output_count: int = _count()
    context_position: int | None = _seconds()
    sequence_number: int = _count()


class ResponseItemRow(Base, table=True):
    """An item of a response: its input (positions 0 to input_count - 1), then its output."""

    __tablename__ = "threadstore_response_items"
    __table_args__ = (
        PrimaryKeyConstraint("response_id", "position"),
        Index(None, "response_id", "id", unique=True),
        one_of("kind", ITEM_KINDS, "kind"),
    )

    response_id: str = Field(
        sa_column=Column(String, ForeignKey("threadstore_responses.id", ondelete="CASCADE"), nullable=False)
    )
    position: int = Field(sa_column=Column(Integer, nullable=False))
    kind: str
    id: str
    type: str
    data: dict[str, Any] = Field(sa_column=json_column("data", nullable=False))


conversations = table_of(ConversationRow)
conversation_items = table_of(ConversationItemRow)
responses = table_of(ResponseRow)
response_items = table_of(ResponseItemRow)
