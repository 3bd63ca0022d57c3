"""The `threadstore` command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from threadstore import Store, migrate
from threadstore.cli import main


def test_demo_prints_each_object_as_api_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert main(["demo", "--url", url]) == 0
    output = capsys.readouterr().out
    blocks = re.split(r"^--- .*$", output, flags=re.MULTILINE)[1:]
    shapes = [json.loads(block) for block in blocks]
    objects = [shape["object"] for shape in shapes]
    for kind in ("assistant", "thread", "thread.message", "thread.run", "thread.run.step", "list"):
        assert kind in objects
    final_run = [s for s in shapes if s["object"] == "thread.run"][-1]
    assert final_run["status"] == "completed"
    steps = [s for s in shapes if s["object"] == "thread.run.step"]
    assert {s["type"] for s in steps} == {"tool_calls", "message_creation"}
    assert all(s["status"] == "completed" for s in steps)


def test_demo_leaves_its_objects_in_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    main(["demo", "--url", url])
    with Store(url) as store:
        (thread,) = store.threads.list()
        assert len(store.messages.list(thread.id)) == 2


def test_demo_defaults_to_threadstore_db_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    assert (tmp_path / "threadstore.db").is_file()


def test_current_reports_the_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).close()
    assert main(["current", "--url", url]) == 0
    assert f"current: {migrate.head()}" in capsys.readouterr().out


def test_a_bad_url_is_reported_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--url", "mysql://nobody@nowhere/db"]) == 1
    assert "threadstore:" in capsys.readouterr().err
