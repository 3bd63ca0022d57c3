"""The `threadstore` command."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, SKIP_POSTGRES, count_as_admin, new_postgres_schema
from threadstore import Store, migrate
from threadstore.cli import main
from threadstore.versions import VERSION_TABLE


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


# --- the commands alembic users expect ------------------------------------------------------------


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The command's stderr, which must be one line starting "threadstore: "."""
    err = capsys.readouterr().err
    assert err.startswith("threadstore: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'x.db'}"


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert re.fullmatch(r"threadstore \S+\n", capsys.readouterr().out)


def test_current_on_a_missing_sqlite_file_creates_nothing_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("THREADSTORE_URL", raising=False)
    assert main(["current"]) == 1
    assert "no database at threadstore.db" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_threadstore_url_is_the_default_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("THREADSTORE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert main(["migrate"]) == 0
    assert sorted(path.name for path in tmp_path.iterdir() if path.suffix == ".db") == ["env.db"]


def test_history_lists_the_revisions_newest_first(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{migrate.history()[0].split(' ')[0]} -> {migrate.head()} (head), ")
    assert lines[-1].startswith("<base> -> 0001, ")


def test_downgrade_moves_the_schema_back_to_the_revision(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--url", sqlite_url]) == 0
    assert main(["downgrade", "0003", "--url", sqlite_url]) == 0
    assert main(["current", "--url", sqlite_url]) == 0
    assert "current: 0003" in capsys.readouterr().out


def test_downgrade_to_an_unknown_revision_exits_1_with_one_line(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate", "--url", sqlite_url]) == 0
    assert main(["downgrade", "0999", "--url", sqlite_url]) == 1
    assert "0999" in one_line_error(capsys)


def test_stamp_records_a_revision_without_migrating(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    Store(sqlite_url).close()
    assert main(["stamp", "0004", "--url", sqlite_url]) == 0
    assert main(["current", "--url", sqlite_url]) == 0
    assert "current: 0004" in capsys.readouterr().out
    assert main(["stamp", "nope", "--url", sqlite_url]) == 1
    assert "nope" in one_line_error(capsys)


def test_check_passes_on_a_migrated_database(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    Store(sqlite_url).close()
    assert main(["check", "--url", sqlite_url]) == 0
    assert "matches" in capsys.readouterr().out


def test_check_exits_1_listing_what_an_older_schema_lacks(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    Store(sqlite_url).close()
    main(["downgrade", "0004", "--url", sqlite_url])
    capsys.readouterr()

    assert main(["check", "--url", sqlite_url]) == 1

    out = capsys.readouterr().out
    assert "the database is at revision 0004" in out
    assert "'add_table', Table('threadstore_events'" in out


def test_a_missing_postgres_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    assert main(["current", "--url", "postgresql://app@db/agents"]) == 1
    assert "pip install 'threadstore[postgres]'" in one_line_error(capsys)


def test_a_schema_for_sqlite_exits_1(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--url", sqlite_url, "--schema", "agents"]) == 1
    assert "PostgreSQL" in one_line_error(capsys)


@SKIP_POSTGRES
def test_migrate_into_a_schema_with_a_postgres_scheme_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert POSTGRES_URL
    url = POSTGRES_URL.replace("postgresql://", "postgres://", 1)
    with new_postgres_schema() as schema:
        assert main(["migrate", "--url", url, "--schema", schema]) == 0
        assert main(["current", "--url", url, "--schema", schema]) == 0
        assert f"current: {migrate.head()}" in capsys.readouterr().out
        assert count_as_admin(f"SELECT count(*) FROM {schema}.{VERSION_TABLE}") == 1


def test_demo_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    process = subprocess.Popen(
        [sys.executable, "-m", "threadstore.cli", "demo", "--url", f"sqlite:///{tmp_path / 'd.db'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == b"--- assistant\n"
    process.stdout.close()  # as `head -1` does
    err = process.stderr.read()
    assert process.wait(timeout=120) == 1
    assert err == b""


def test_an_unreachable_database_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["current", "--url", "postgresql://nobody@127.0.0.1:1/none"]) == 1
    assert "127.0.0.1" in one_line_error(capsys)
