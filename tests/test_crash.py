"""Hard stops on SQLite: a writer killed with SIGKILL at random moments leaves a whole database,
with every transaction it reported committed and none half there; a migration killed midway
leaves the schema wholly old or wholly new. Each committed transaction's events are all there,
and none of a transaction that did not commit."""

from __future__ import annotations

import functools
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.crash_writer import MESSAGES_PER_TRANSACTION, STEPS_PER_TRANSACTION, write_one
from threadstore import Store, migrate
from threadstore.db import create_engine
from threadstore.schema import metadata

REPO = Path(__file__).parents[1]
KILLS = 25


def start(url: str, argument: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash_writer", url, argument], cwd=REPO, stdout=subprocess.PIPE, text=True
    )


def kill(process: subprocess.Popen[str]) -> list[str]:
    """SIGKILL the process and return every line it printed."""
    process.send_signal(signal.SIGKILL)
    output, _ = process.communicate(timeout=30)
    return output.split()


@functools.cache
def events_per_transaction() -> int:
    """How many events one of the writer's transactions writes, counted on a store of its own."""
    with Store("sqlite://") as store:
        assistant = store.assistants.create(model="gpt-4o").id
        with store.transaction() as tx:
            thread = write_one(tx, assistant, "reference")
        return len(store.events.list(thread_id=thread))


def check_whole(url: str, committed: set[str]) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            threads = connection.exec_driver_sql(
                "SELECT t.id, json_extract(t.metadata, '$.marker'),"
                " (SELECT count(*) FROM threadstore_messages m WHERE m.thread_id = t.id),"
                " (SELECT count(*) FROM threadstore_runs r WHERE r.thread_id = t.id AND r.status = 'completed'),"
                " (SELECT count(*) FROM threadstore_run_steps s JOIN threadstore_run_step_details d ON d.id ="
                " s.step_details"
                "   WHERE s.thread_id = t.id AND s.status = 'completed'),"
                " (SELECT count(*) FROM threadstore_events e WHERE e.thread_id = t.id)"
                " FROM threadstore_threads t"
            ).all()
            strays = connection.exec_driver_sql(
                "SELECT count(*) FROM threadstore_events e WHERE e.thread_id NOT IN (SELECT id FROM"
                " threadstore_threads)"
            ).scalar()
    finally:
        engine.dispose()
    markers = {marker for _, marker, *_ in threads}
    assert committed <= markers, f"lost: {sorted(committed - markers)[:5]}"
    whole = (MESSAGES_PER_TRANSACTION, 1, STEPS_PER_TRANSACTION, events_per_transaction())
    for _, marker, *counts in threads:
        assert tuple(counts) == whole, marker
    assert strays == 0  # no event of a transaction that did not commit


def test_a_writer_killed_at_random_moments_leaves_every_committed_transaction_whole(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    Store(url).close()
    chance = random.Random(20261121)
    committed: set[str] = set()
    for label in range(KILLS):
        writer = start(url, f"w{label}")
        assert writer.stdout is not None
        # Imported and opened (seconds under load), the writer says so; then it commits meanwhile.
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(chance.uniform(0.05, 0.5))
        committed |= set(kill(writer))
        check_whole(url, committed)
    assert len(committed) > KILLS  # the writer did commit work between the kills


@pytest.mark.parametrize("seed", range(8))
def test_a_migration_killed_midway_leaves_the_schema_wholly_old_or_wholly_new(tmp_path: Path, seed: int) -> None:
    url = f"sqlite:///{tmp_path / 'migrating.db'}"
    writer = start(url, "migrate")
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "migrating"
    time.sleep(random.Random(seed).uniform(0, 0.05))  # the upgrade itself takes about 40 ms
    kill(writer)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            tables = set(sa.inspect(connection).get_table_names())
            revision = migrate.current(connection)
    finally:
        engine.dispose()
    ours = {table.name for table in metadata.sorted_tables}
    if revision is None:
        assert not tables & ours, "a killed migration left part of the new schema"
    else:
        assert (revision, ours <= tables) == (migrate.head(), True)
