"""Many worker processes on one store's responses, on every backend: each queued response is
claimed and completed exactly once, a conversation never has two responses in progress, and
each conversation ends holding every completed turn at contiguous positions; no claim raises,
because a conversation's queued responses are claimed oldest first."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.conftest import FakeClock
from tests.test_workers import WORKERS, in_processes
from threadstore import Store
from threadstore.db import create_engine
from threadstore.responses.models import conversation_items, responses

CONVERSATIONS = 10
PER_CONVERSATION = 20


def _queued(store: Store) -> int:
    with store.engine.connect() as connection:
        query = sa.select(sa.func.count()).where(responses.c.status == "queued")
        return int(connection.execute(query).scalar_one())


def _work_until_empty(store: Store, _index: int) -> list[str]:
    done: list[str] = []
    while True:
        claimed = store.responses.claim_next()  # never raises: a worker loop has no retry of its own
        if claimed is None:
            if not _queued(store):
                return done
            time.sleep(0.005)  # the queued responses wait for their conversations' responses in progress
            continue
        answer = {"type": "message", "role": "assistant", "content": claimed.id, "status": "completed"}
        store.responses.add_output_item(claimed.id, item=answer)
        store.responses.complete(claimed.id)
        done.append(claimed.id)


def test_eight_workers_complete_every_response_once_one_at_a_time_per_conversation(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    conversations = [store.conversations.create().id for _ in range(CONVERSATIONS)]
    with store.transaction() as tx:
        made = [
            tx.responses.create(model="gpt-4o", input="q", conversation=conversation, background=True).id
            for _ in range(PER_CONVERSATION)
            for conversation in conversations
        ]
    done = [response for batch in in_processes(WORKERS, _work_until_empty, store_url, clock) for response in batch]
    assert Counter(done) == Counter(made)
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(conversation_items.c.conversation_id, conversation_items.c.position).order_by(
                conversation_items.c.conversation_id, conversation_items.c.position
            )
        ).all()
    positions: dict[str, list[int]] = {}
    for conversation, position in rows:
        positions.setdefault(conversation, []).append(position)
    assert positions == {conversation: list(range(2 * PER_CONVERSATION)) for conversation in conversations}
    for conversation in conversations:  # each turn's question directly before its answer
        items = store.conversations.items.list(conversation, order="asc", limit=100).data
        assert [item.data["role"] for item in items] == ["user", "assistant"] * PER_CONVERSATION


def test_a_conversations_next_response_waits_while_another_claimer_holds_its_oldest(
    store: Store, store_url: sa.URL, backend: str, clock: FakeClock
) -> None:
    if backend != "postgres":
        pytest.skip("row locks that claimers skip are PostgreSQL's; SQLite has one writer at a time")
    conversation = store.conversations.create().id
    oldest = store.responses.create(model="gpt-4o", input="q", conversation=conversation, background=True).id
    clock.advance(1)
    store.responses.create(model="gpt-4o", input="q", conversation=conversation, background=True)
    clock.advance(1)
    elsewhere = store.responses.create(model="gpt-4o", input="q", background=True).id
    holder = create_engine(store_url)
    connection = holder.raw_connection()
    try:  # as a claimer that has picked the oldest and not yet committed
        connection.cursor().execute("SELECT id FROM threadstore_responses WHERE id = %s FOR UPDATE", (oldest,))
        claimed = store.responses.claim_next()
        assert claimed is not None and claimed.id == elsewhere
        assert store.responses.claim_next() is None
    finally:
        connection.rollback()
        connection.close()
        holder.dispose()
    claimed = store.responses.claim_next()
    assert claimed is not None and claimed.id == oldest
