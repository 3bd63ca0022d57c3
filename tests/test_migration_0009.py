"""Migration 0009 (events indexed by thread only) keeps every event, both ways, on both backends:
a database filled at head, taken down to 0007 and up again, reads each run's events as before."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from tests.factories import assistant_id
from threadstore import Store, migrate
from threadstore.events.api import Event


def runs_events(url: URL, runs: list[str]) -> dict[str, list[Event]]:
    with Store(url) as store:
        return {run: store.events.list(run_id=run) for run in runs}


def index_columns(engine: Engine, table: str) -> dict[str | None, list[str | None]]:
    return {index["name"]: index["column_names"] for index in sa.inspect(engine).get_indexes(table)}


def test_down_to_0007_and_up_again_keeps_each_runs_events(empty_url: URL, engine: Engine) -> None:
    migrate.upgrade(engine)
    with Store(empty_url) as store:
        thread = store.threads.create().id
        runs = []
        for _ in range(2):
            run = store.runs.create(thread, assistant_id=assistant_id(store)).id
            store.runs.cancel(run)
            runs.append(run)
    before = runs_events(empty_url, runs)
    migrate.downgrade(engine, "0007")
    old = {"ix_events_thread_id": ["thread_id", "id"], "ix_events_run_id": ["run_id", "id"]}
    assert index_columns(engine, "events") == old
    migrate.upgrade(engine, "0009")
    assert index_columns(engine, "events") == {"ix_events_thread_id": ["thread_id", "id", "run_id"]}
    migrate.upgrade(engine)  # 0010 names the table and its index threadstore_
    assert index_columns(engine, "threadstore_events") == {
        "ix_threadstore_events_thread_id": ["thread_id", "id", "run_id"]
    }
    assert runs_events(empty_url, runs) == before
    assert all(before[run] and {event.run_id for event in before[run]} == {run} for run in runs)
