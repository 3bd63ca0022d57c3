"""Many worker processes on one store's responses, on every backend: each queued response is
claimed and completed exactly once, a conversation never has two responses in progress, and
each conversation ends holding every completed turn at contiguous positions; no claim raises,
because a conversation's queued responses are claimed oldest first."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.conftest import OPEN_STORE, FakeClock, count_as_admin
from tests.test_workers import WORKERS, in_processes
from threadstore import ConflictError, Store
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


def _wait_until_blocked(backend: str, application: str) -> None:
    """Return once the claimer's connection (named `application`) waits for a lock on PostgreSQL.
    SQLite has nothing to wait for: the claim waits for the write lock and runs after the commit."""
    if backend != "postgres":
        return
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name AND wait_event_type = 'Lock'"
    for _ in range(400):
        if count_as_admin(query, name=application):
            return
        time.sleep(0.025)
    raise AssertionError("the claim never waited for the start's transaction")


def test_a_claim_racing_a_start_on_the_same_conversation_passes_the_conversation_over(
    store: Store, store_url: sa.URL, backend: str, store_kind: str, clock: FakeClock
) -> None:
    conversation = store.conversations.create().id
    oldest = store.responses.create(model="gpt-4o", input="q", conversation=conversation, background=True).id
    clock.advance(1)
    later = store.responses.create(model="gpt-4o", input="q", conversation=conversation, background=True).id
    application = f"claimer_{uuid.uuid4().hex[:10]}"
    claimer_url = store_url.update_query_dict({"application_name": application}) if backend == "postgres" else store_url
    outcome: list[object] = []

    def claim(claimer: Store) -> None:
        try:
            outcome.append(claimer.responses.claim_next())
        except ConflictError as error:
            outcome.append(error)

    with OPEN_STORE[store_kind](claimer_url, clock=clock) as claimer:
        with store.transaction() as tx:  # the start commits after the claim has looked at the queue
            tx.responses.start(later)
            racing = threading.Thread(target=claim, args=(claimer,))
            racing.start()
            _wait_until_blocked(backend, application)
        racing.join(timeout=60)
    assert outcome == [None]
    assert store.responses.get(later).status == "in_progress"
    assert store.responses.get(oldest).status == "queued"
