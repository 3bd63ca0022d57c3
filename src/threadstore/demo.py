"""`threadstore demo`: one thread walked through messages, a run with a tool call, and completion."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from threadstore.store import Store


def run_demo(store: Store, emit: Callable[[str], None] = print) -> dict[str, Any]:
    """Walk a conversation through the store, printing each object's API JSON; return the last run.

    Raises:
        ThreadStoreError: the store refused a step (it should not, on a healthy database).
    """

    def show(title: str, shape: dict[str, Any]) -> None:
        emit(f"--- {title}")
        emit(json.dumps(shape, indent=2))

    weather = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    assistant = store.assistants.create(
        model="gpt-4o", name="Weather bot", instructions="Answer with the weather.",
        tools=[{"type": "function", "function": weather}],
    )  # fmt: skip
    show("assistant", assistant.to_api())
    with store.transaction() as tx:
        thread = tx.threads.create(metadata={"user": "42"})
        question = tx.messages.create(thread.id, role="user", content="What is the weather in Paris?")
    show("thread", thread.to_api())
    show("user message", question.to_api())

    run = store.runs.create(thread.id, assistant_id=assistant.id)
    show("run, queued", run.to_api())
    claimed = store.runs.claim_next()
    assert claimed is not None
    call = {
        "id": "call_weather_paris",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    show("run, requires_action", store.runs.require_action(claimed.id, tool_calls=[call]).to_api())
    store.runs.submit_tool_outputs(claimed.id, tool_outputs=[{"tool_call_id": call["id"], "output": "18°C, sunny"}])
    store.runs.claim_next()

    with store.transaction() as tx:
        answer = tx.messages.create(
            thread.id, role="assistant", content="", assistant_id=assistant.id, run_id=run.id, status="in_progress"
        )
        step = tx.run_steps.create(
            run.id, step_details={"type": "message_creation", "message_creation": {"message_id": answer.id}}
        )
        tx.messages.update_content(answer.id, content="It is 18°C and sunny in Paris.")
        tx.run_steps.complete(step.id, usage={"prompt_tokens": 52, "completion_tokens": 11})
        done = tx.runs.complete(run.id, usage={"prompt_tokens": 97, "completion_tokens": 23})
    for each in store.run_steps.list(run.id, order="asc"):
        show(f"run step, {each.type}", each.to_api())
    show("assistant message", store.messages.get(answer.id).to_api())
    show("run, completed", done.to_api())
    show("thread messages", store.messages.list(thread.id, order="asc").to_api())
    return done.to_api()
