"""`responses.context`: every item the model sees for a response, in order, in one query.

A recursive CTE walks the `previous_response_id` chain from the response to its root. The model
sees, in order: the items of the root's conversation up to the position the root saw (its
`context_position`, or the conversation's last position while it is queued), then, from the
oldest response of the chain to the newest, each one's input and output, and last the
response's own input. Nothing of an earlier response is copied into a later one.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from threadstore.fastsql import Statement, word
from threadstore.responses.models import conversation_items, conversations, response_items, responses


def _number(value: int) -> sa.ColumnElement[int]:
    """A constant written into the SQL, not bound (see fastsql.word)."""
    return sa.literal_column(str(value), sa.Integer)


def _query() -> Any:
    chain = (
        sa.select(
            responses.c.id,
            responses.c.previous_response_id,
            responses.c.conversation_id,
            responses.c.context_position,
            _number(0).label("depth"),
        )
        .where(responses.c.id == sa.bindparam("id"))
        .cte("chain", recursive=True)
    )
    earlier = responses.alias("earlier")
    chain = chain.union_all(
        sa.select(
            earlier.c.id,
            earlier.c.previous_response_id,
            earlier.c.conversation_id,
            earlier.c.context_position,
            (chain.c.depth + _number(1)).label("depth"),
        ).join(chain, earlier.c.id == chain.c.previous_response_id)
    )
    last_position = (
        sa.select(conversations.c.next_position - _number(1))
        .where(conversations.c.id == chain.c.conversation_id)
        .scalar_subquery()
    )
    seen = (
        sa.select(
            _number(0).label("part"),
            _number(0).label("depth"),
            conversation_items.c.position.label("position"),
            conversation_items.c.id,
            conversation_items.c.type,
            conversation_items.c.data,
        )
        .select_from(conversation_items)
        .join(
            chain,
            sa.and_(
                conversation_items.c.conversation_id == chain.c.conversation_id,
                conversation_items.c.position <= sa.func.coalesce(chain.c.context_position, last_position),
            ),
        )
    )
    own = (
        sa.select(
            _number(1).label("part"),
            (-chain.c.depth).label("depth"),
            sa.cast(response_items.c.position, sa.BigInteger).label("position"),
            response_items.c.id,
            response_items.c.type,
            response_items.c.data,
        )
        .select_from(response_items)
        .join(
            chain,
            sa.and_(
                response_items.c.response_id == chain.c.id,
                sa.or_(chain.c.depth > _number(0), response_items.c.kind == word("input")),
            ),
        )
    )
    union = sa.union_all(seen, own).subquery("context")
    return sa.select(union.c.id, union.c.type, union.c.data).order_by(union.c.part, union.c.depth, union.c.position)


CONTEXT = Statement(_query())
