"""One writer of status: every statement that writes a status (an INSERT of an object that has
one, an UPDATE that sets one) is sent by `threadstore.transitions`, whatever verb caused it."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import FakeClock
from threadstore import Store, fastsql, transitions
from threadstore.openai.models import messages

STATUS_TABLES = "threadstore_(?:runs|messages|run_steps|langgraph_runs|langgraph_threads|responses)"
INSERT = rf"INSERT INTO ({STATUS_TABLES})\b"
UPDATE = rf"UPDATE ({STATUS_TABLES}) SET (?:(?!\bWHERE\b).)*\bstatus\s*="  # status set, not tested
STATUS_WRITE = re.compile(rf"^\s*({INSERT}|{UPDATE})", re.S)
WRITER = Path(transitions.__file__).resolve()
EXECUTOR = Path(fastsql.__file__).resolve()


def sender() -> Path:
    """The file of the first frame outside the executor that asked for the statement."""
    frame = sys._getframe(2)
    while Path(frame.f_code.co_filename).resolve() == EXECUTOR:
        assert frame.f_back is not None
        frame = frame.f_back
    return Path(frame.f_code.co_filename).resolve()


@pytest.fixture
def status_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Path]]]:
    """Every status-writing statement sent while the test runs, with the file that sent it."""
    seen: list[tuple[str, Path]] = []
    real = fastsql.Raw._run

    def recording(self: fastsql.Raw, sql: str, params: Any) -> Any:
        if STATUS_WRITE.match(sql):
            seen.append((sql.split(" SET ")[0].split(" (")[0], sender()))
        return real(self, sql, params)

    monkeypatch.setattr(fastsql.Raw, "_run", recording)
    yield seen


def every_verb(store: Store, clock: FakeClock) -> None:
    """A workload that makes every kind of status write: creates, moves, claims, sweeps,
    cascades, multitask strategies and derived thread statuses."""
    assistant = store.assistants.create(model="gpt-4o")
    thread = store.threads.create(messages=[{"role": "user", "content": "hi"}])
    store.messages.create_many(thread.id, [{"role": "user", "content": "a"}])
    draft = store.messages.create(thread.id, role="user", content="x", status="in_progress")
    store.messages.complete(draft.id)
    store.messages.mark_incomplete(
        store.messages.create(thread.id, role="user", content="y", status="in_progress").id, reason="max_tokens"
    )

    run = store.runs.create(thread.id, assistant_id=assistant.id)
    claimed = store.runs.claim_next()
    assert claimed is not None and claimed.id == run.id
    reply = store.messages.create(thread.id, role="assistant", content="", run_id=run.id, status="in_progress")
    step = store.run_steps.create(
        run.id, step_details={"type": "message_creation", "message_creation": {"message_id": reply.id}}
    )
    store.run_steps.complete(step.id)
    store.runs.require_action(run.id, tool_calls=[{"function": {"name": "f", "arguments": "{}"}}])
    call = store.runs.get(run.id).required_action
    assert call is not None
    call_id = call["submit_tool_outputs"]["tool_calls"][0]["id"]
    store.runs.submit_tool_outputs(run.id, tool_outputs=[{"tool_call_id": call_id, "output": "1"}])
    store.runs.start(run.id)
    store.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    store.runs.cancel(run.id)
    store.runs.mark_cancelled(run.id)
    failing = store.runs.create(thread.id, assistant_id=assistant.id)
    store.runs.fail(failing.id, code="server_error", message="boom")
    store.runs.create(thread.id, assistant_id=assistant.id, expires_in=1)
    clock.advance(5)
    assert len(store.runs.expire_overdue()) == 1

    lg_thread = store.langgraph.threads.create()
    first = store.langgraph.runs.create(lg_thread.thread_id, assistant_id="agent")
    store.langgraph.runs.create(lg_thread.thread_id, assistant_id="agent", multitask_strategy="interrupt")
    store.langgraph.runs.create(lg_thread.thread_id, assistant_id="agent", multitask_strategy="rollback")
    claim = store.langgraph.runs.claim_next(lease_seconds=1)
    assert claim is not None and claim.run_id != first.run_id
    store.langgraph.runs.heartbeat(claim.run_id, attempt=claim.attempt, lease_seconds=1)
    clock.advance(5)
    assert len(store.langgraph.runs.requeue_stale(max_attempts=2)) == 1
    again = store.langgraph.runs.claim_next()
    assert again is not None
    store.langgraph.runs.finish(again.run_id, attempt=again.attempt, status="success")
    store.langgraph.runs.cancel(store.langgraph.runs.create(lg_thread.thread_id, assistant_id="agent").run_id)

    conversation = store.conversations.create()
    queued = store.responses.create(model="gpt-4o", input="hi", conversation=conversation.id, background=True)
    claimed_response = store.responses.claim_next()
    assert claimed_response is not None and claimed_response.id == queued.id
    answer = store.responses.add_output_item(queued.id, item={"type": "message", "role": "assistant", "content": []})
    store.responses.append_text(queued.id, item_id=answer.id, text="hi")
    store.responses.complete(queued.id)
    store.responses.start(store.responses.create(model="gpt-4o", input="hi", background=True).id)
    store.responses.fail(store.responses.create(model="gpt-4o", input="hi").id, code="server_error", message="x")
    store.responses.mark_incomplete(store.responses.create(model="gpt-4o", input="hi").id, reason="content_filter")
    store.responses.cancel(store.responses.create(model="gpt-4o", input="hi", background=True).id)


def test_every_status_write_is_sent_by_the_one_writer(
    store: Store, clock: FakeClock, status_writes: list[tuple[str, Path]]
) -> None:
    every_verb(store, clock)

    statements = {statement for statement, _ in status_writes}
    assert len(statements) >= 10  # inserts and updates of every table with a status were seen
    assert [(statement, path) for statement, path in status_writes if path != WRITER] == []


@pytest.mark.parametrize("store_kind", ["sync"])  # plants a write through the sync scope
def test_a_status_written_around_the_writer_is_seen(store: Store, status_writes: list[tuple[str, Path]]) -> None:
    thread = store.threads.create()
    message = store.messages.create(thread.id, role="user", content="x", status="in_progress")
    around = fastsql.Statement(sa.update(messages).where(messages.c.id == message.id).values(status="completed"))
    with store.transaction() as tx, tx.messages._scope.write() as raw:
        raw.execute(around)

    assert [path for _, path in status_writes if path != WRITER] == [Path(__file__).resolve()]
