"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

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
