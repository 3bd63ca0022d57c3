"""The README's Python examples run as written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from threadstore import Store

README = (Path(__file__).parents[1] / "README.md").read_text()
BLOCKS: list[str] = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)


def block_after(heading: str) -> str:
    start = README.index(heading)
    return next(block for block in BLOCKS if README.index(block) > start)


def test_the_usage_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(block_after("## Use"), namespace)
    with Store("sqlite:///app.db") as store:
        (thread,) = store.threads.list()
        assert store.runs.list(thread.id).data[0].status == "queued"


def test_the_worker_loop_completes_queued_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with Store("sqlite:///app.db") as store:
        assistant = store.assistants.create(model="gpt-4o")
        runs = [store.runs.create(store.threads.create().id, assistant_id=assistant.id) for _ in range(2)]
    exec(block_after("A worker loop:"), {})
    with Store("sqlite:///app.db") as store:
        for run in runs:
            done = store.runs.get(run.id)
            assert done.status == "completed"
            (reply,) = store.messages.list(run.thread_id)
            assert (reply.status, reply.content[0]["text"]["value"]) == ("completed", "Hello!")


def test_the_langgraph_worker_loop_finishes_its_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(block_after("## LangGraph servers"), {})
    with Store("sqlite:///app.db") as store:
        (thread,) = store.langgraph.threads.search()
        assert thread.status == "idle"
        assert [r.status for r in store.langgraph.runs.list(thread.thread_id)] == ["success"]


def test_the_fastapi_example_serves_threads_and_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(block_after("## Async servers"), namespace)

    async def client_session() -> tuple[int, list[str], int]:
        transport = httpx.ASGITransport(app=namespace["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            thread = (await client.post("/threads")).json()
            for text in ("first", "second"):
                added = await client.post(f"/threads/{thread['id']}/messages", json={"content": text})
                assert added.status_code == 200
            page = (await client.get(f"/threads/{thread['id']}/messages")).json()
            missing = await client.get("/threads/thread_missing/messages")
        await namespace["store"].close()
        return len(page["data"]), [m["content"][0]["text"]["value"] for m in page["data"]], missing.status_code

    assert asyncio.run(client_session()) == (2, ["first", "second"], 404)


def test_the_responses_example_and_worker_loop_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(block_after("## Responses and Conversations"), namespace)
    exec(block_after("A response worker loop:"), {})
    with Store("sqlite:///app.db") as store:
        resp = store.responses.get(namespace["resp"].id)
        assert (resp.status, resp.output_text) == ("completed", "Hello!")
        items = store.conversations.items.list(namespace["conv"].id, order="asc").data
        assert [item.data["role"] for item in items] == ["user", "user", "user", "assistant"]
