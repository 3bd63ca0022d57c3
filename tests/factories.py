"""Builders that put objects into each state the store can reach, for the tests."""

from __future__ import annotations

from typing import Any

from threadstore import Message, Run, RunStep, Store

FUNCTION_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
CALL: dict[str, Any] = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def assistant_id(store: Store) -> str:
    return store.assistants.create(model="gpt-4o", name="helper", tools=[FUNCTION_TOOL]).id


def thread_id(store: Store) -> str:
    return store.threads.create().id


def run_in(store: Store, status: str) -> Run:
    """A run on a new thread, moved by the public verbs into `status`."""
    run = store.runs.create(thread_id(store), assistant_id=assistant_id(store))
    moves: dict[str, list[Any]] = {
        "queued": [],
        "in_progress": [store.runs.start],
        "requires_action": [store.runs.start, lambda i: store.runs.require_action(i, tool_calls=[CALL])],
        "cancelling": [store.runs.start, store.runs.cancel],
        "cancelled": [store.runs.cancel],
        "completed": [store.runs.start, lambda i: store.runs.complete(i, usage=USAGE)],
        "failed": [store.runs.start, lambda i: store.runs.fail(i, code="server_error", message="boom")],
        "incomplete": [store.runs.start, lambda i: store.runs.mark_incomplete(i, reason="max_prompt_tokens")],
        "expired": [store.runs.expire],
    }
    for move in moves[status]:
        run = move(run.id)
    assert run.status == status
    return run


def reply_in_progress(store: Store, run: Run, text: str = "Hal") -> tuple[Message, RunStep]:
    """A run's assistant message in progress, and the message_creation step that writes it."""
    message = store.messages.create(
        run.thread_id,
        role="assistant",
        content=text,
        run_id=run.id,
        assistant_id=run.assistant_id,
        status="in_progress",
    )
    details = {"type": "message_creation", "message_creation": {"message_id": message.id}}
    return message, store.run_steps.create(run.id, step_details=details)
