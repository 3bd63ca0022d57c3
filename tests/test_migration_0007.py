"""Migration 0007 on a database with data, on both backends: existing LangGraph runs are numbered
in the order the clock gave them, existing threads' metadata is indexed, existing OpenAI runs
start with no claim; and down to 0005 and up again keeps every row."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from tests.conftest import FakeClock
from tests.factories import assistant_id, thread_id
from threadstore import Store, migrate


def test_upgrade_numbers_runs_indexes_metadata_and_leaves_openai_runs_unclaimed(empty_url: URL, engine: Engine) -> None:
    url = empty_url
    migrate.upgrade(engine)
    clock = FakeClock()
    with Store(url, clock=clock) as store:
        users = [store.langgraph.threads.create(metadata={"user_id": f"u{i}", "n": i}) for i in range(3)]
        thread = users[0].thread_id
        first = store.langgraph.runs.create(thread, assistant_id="agent")
        clock.advance(1)
        second = store.langgraph.runs.create(thread, assistant_id="agent")
        openai_run = store.runs.start(store.runs.create(thread_id(store), assistant_id=assistant_id(store)).id)
    migrate.downgrade(engine, "0005")
    migrate.upgrade(engine)
    with Store(url, clock=clock) as store:
        found = store.langgraph.threads.search(metadata={"n": 1.0})
        assert [t.thread_id for t in found] == [users[1].thread_id]
        clock.advance(-3600)  # the order no longer depends on the clock
        claimed = store.langgraph.runs.claim_next()
        assert claimed is not None and claimed.run_id == first.run_id
        store.langgraph.runs.finish(first.run_id, attempt=claimed.attempt, status="error")
        then = store.langgraph.runs.claim_next()
        assert then is not None and then.run_id == second.run_id
        store.langgraph.runs.finish(second.run_id, attempt=then.attempt, status="success")
        assert store.langgraph.threads.get(thread).status == "idle"
        upgraded = store.runs.get(openai_run.id)
        assert (upgraded.status, upgraded.attempt, upgraded.lease_expires_at) == ("in_progress", 0, None)
        assert upgraded.to_api() == openai_run.to_api()
    with engine.connect() as connection:
        seqs = connection.execute(
            sa.text("SELECT count(DISTINCT seq) FROM threadstore_langgraph_runs WHERE seq > 0")
        ).scalar()
    assert seqs == 2
