"""Calls a user might write with a wrong literal. mypy must refuse each line marked `# E: code`
and accept the rest; tests/test_types.py runs mypy on this file and compares. Never imported or
collected by pytest, and left out of the project's own mypy run (pyproject: exclude)."""

from __future__ import annotations

from threadstore import AsyncStore, Store


def wrong(store: Store, thread: str, run: str, message: str) -> None:
    store.messages.list(thread, order="ascending")  # E: arg-type
    store.messages.create(thread, role="system", content="Hi")  # E: arg-type
    store.messages.create(thread, role="user", content="Hi", status="incomplete")  # E: arg-type
    store.messages.create(thread, role="user", content=[{"type": "txt", "text": "Hi"}])  # E: typeddict-item
    store.messages.mark_incomplete(message, reason="timeout")  # E: arg-type
    store.runs.fail(run, code="boom", message="x")  # E: arg-type
    store.runs.mark_incomplete(run, reason="max_tokens")  # E: arg-type
    store.runs.create(thread, assistant_id="asst_1", reasoning_effort="maximum")  # E: arg-type
    store.run_steps.fail(run, code="invalid_prompt", message="x")  # E: arg-type
    store.threads.list(order="newest")  # E: arg-type
    store.langgraph.threads.create(if_exists="ignore")  # E: arg-type
    store.langgraph.threads.search(status="running")  # E: arg-type
    store.langgraph.threads.search(sort_order="descending")  # E: arg-type
    store.langgraph.runs.create(thread, assistant_id="agent", multitask_strategy="queue")  # E: arg-type
    store.langgraph.runs.finish(run, attempt=1, status="done")  # E: arg-type
    store.langgraph.runs.cancel(run, action="stop")  # E: arg-type
    store.threads.create_and_run(assistant_id="asst_1", reasoning_effort="huge")  # E: arg-type


async def wrong_async(store: AsyncStore, thread: str) -> None:
    await store.messages.list(thread, order="ascending")  # E: arg-type


def right(store: Store, thread: str, run: str, message: str) -> None:
    store.messages.list(thread, order="asc")
    store.messages.create(thread, role="assistant", content=[{"type": "text", "text": "Hi"}], status="in_progress")
    store.messages.mark_incomplete(message, reason="run_cancelled")
    store.runs.fail(run, code="rate_limit_exceeded", message="x")
    store.runs.create(thread, assistant_id="asst_1", reasoning_effort="low")
    store.langgraph.runs.create(thread, assistant_id="agent", multitask_strategy="rollback")
    store.langgraph.runs.cancel(run, action="rollback")
    store.threads.create_and_run(assistant_id="asst_1", thread={"metadata": {}}, reasoning_effort="high")
