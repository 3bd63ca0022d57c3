"""Reads and writes of responses and items that several modules of the package share, each
taking the caller's executor."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from threadstore.errors import ConflictError
from threadstore.fastsql import Raw, Statement, insert, word
from threadstore.records import Json, Row
from threadstore.responses.api import Response
from threadstore.responses.items import Item
from threadstore.responses.models import conversation_items, conversations, response_items, responses
from threadstore.responses.states import APPENDING
from threadstore.rows import Rows

RESPONSES = Rows(responses, "response")
# What the verbs read of a response before they change it (locked until the unit ends).
STATE_COLUMNS = ("id", "status", "background", "conversation_id", "input_count", "output_count", "sequence_number")
STATE = Rows(responses, "response", columns=[responses.c[name] for name in STATE_COLUMNS])
# The counts the verbs that add output items and text keep on the response's row.
SET_COUNTS = Statement(
    sa.update(responses)
    .where(responses.c.id == sa.bindparam("id"))
    .values(
        output_count=sa.bindparam("output_count", type_=sa.BigInteger),
        sequence_number=sa.bindparam("sequence_number", type_=sa.BigInteger),
    )
)
CONVERSATIONS = Rows(conversations, "conversation")
INSERT_RESPONSE = insert(responses)
INSERT_RESPONSE_ITEM = insert(response_items)
INSERT_CONVERSATION_ITEM = insert(conversation_items)

_OUTPUT = Statement(
    sa.select(response_items.c.id, response_items.c.type, response_items.c.data)
    .where(response_items.c.response_id == sa.bindparam("id"), response_items.c.kind == "output")
    .order_by(response_items.c.position)
)

# Hands out `count` positions of a conversation, in the writing transaction: the UPDATE also
# locks the conversation's row until the transaction ends, so concurrent writers queue.
_TAKE_POSITIONS = Statement(
    sa.update(conversations)
    .where(conversations.c.id == sa.bindparam("id"))
    .values(next_position=conversations.c.next_position + sa.bindparam("count", type_=sa.BigInteger))
    .returning(conversations.c.next_position)
)


_APPENDING = Statement(
    sa.select(responses.c.id).where(
        responses.c.conversation_id == sa.bindparam("conversation_id"), responses.c.status == word(APPENDING)
    )
)


def in_progress_on(raw: Raw, conversation_id: str) -> str | None:
    """The id of the response in progress on a conversation, if there is one. The caller has
    locked the conversation's row (take_positions) first: on PostgreSQL this statement's snapshot
    then holds every response that started on it and committed before."""
    busy = raw.first(_APPENDING, {"conversation_id": conversation_id})
    return None if busy is None else str(busy["id"])


def busy_conversation(conversation_id: str, response_id: str) -> ConflictError:
    """The refusal of a second response in progress on a conversation."""
    return ConflictError(
        f"Conversation {conversation_id} already has a response in progress ({response_id}): a conversation has"
        " at most one response in progress at a time; start this one once that one has ended."
    )


def refuse_busy(raw: Raw, conversation_id: str) -> None:
    """Refuse a second response in progress on a conversation (whose row the caller has locked).

    Raises:
        ConflictError: one is in progress.
    """
    busy = in_progress_on(raw, conversation_id)
    if busy is not None:
        raise busy_conversation(conversation_id, busy)


def output_of(raw: Raw, row: Row) -> list[Item]:
    """The output items of the response in `row`, in order (no query when it has none)."""
    if not row["output_count"]:
        return []
    return [Item.from_row(item) for item in raw.rows(_OUTPUT, {"id": row["id"]})]


def load_response(raw: Raw, row: Row) -> Response:
    """The response of `row`, with its output items: read, unless the row carries them (under
    `output`, put there by a writer that has just read them)."""
    output = row.get("output")
    return Response.from_row(row, output_of(raw, row) if output is None else output)


def take_positions(raw: Raw, conversation_id: str, count: int) -> int | None:
    """Reserve `count` positions at the end of a conversation; return the first, or None when
    there is no such conversation."""
    found = raw.first(_TAKE_POSITIONS, {"id": conversation_id, "count": count})
    return None if found is None else int(found["next_position"]) - count


def append_to_conversation(raw: Raw, conversation_id: str, start: int, items: Sequence[Json], now: int) -> None:
    """Write `items` into a conversation at positions `start`, `start + 1`, ..."""
    rows = [
        {
            "conversation_id": conversation_id,
            "position": start + offset,
            "id": item["id"],
            "type": item["type"],
            "created_at": now,
            "data": item,
        }
        for offset, item in enumerate(items)
    ]
    raw.execute_many(INSERT_CONVERSATION_ITEM, rows)


def response_item_rows(response_id: str, kind: str, start: int, items: Sequence[Json]) -> list[Json]:
    """The response_items rows of `items`, at positions `start`, `start + 1`, ..."""
    return [
        {
            "response_id": response_id,
            "position": start + offset,
            "kind": kind,
            "id": item["id"],
            "type": item["type"],
            "data": item,
        }
        for offset, item in enumerate(items)
    ]
