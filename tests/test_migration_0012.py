"""Migration 0012 (the thread metadata index as one B-tree: its primary key the whole row, no
second index, no foreign key) keeps every row, both ways, on both backends; its downgrade drops
only the rows whose thread is gone, and on SQLite gives back every other index on the table, an
application's too.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from tests.test_migration_0010 import assert_upgrading_from_keeps_every_row_and_every_objects_api_shape, filled, rows
from threadstore import Store, migrate
from threadstore.schema import TABLE_PREFIX

BEFORE = "0011"
TABLE = "threadstore_langgraph_thread_metadata"


def index_layout(engine: Engine) -> tuple[list[str], list[tuple[str, list[str]]], int]:
    """The table's primary key columns, its other indexes (name, columns) and its foreign keys' count."""
    inspector = sa.inspect(engine)
    primary_key = inspector.get_pk_constraint(TABLE)["constrained_columns"]
    indexes = sorted(
        (str(index["name"]), [str(c) for c in index["column_names"]]) for index in inspector.get_indexes(TABLE)
    )
    return primary_key, indexes, len(inspector.get_foreign_keys(TABLE))


def test_at_head_the_index_is_its_primary_key_alone(engine: Engine) -> None:
    migrate.upgrade(engine)

    assert index_layout(engine) == (["key", "value", "created_at", "thread_id"], [], 0)


def test_at_0011_the_index_was_a_key_by_thread_an_index_by_key_and_a_foreign_key(engine: Engine) -> None:
    migrate.upgrade(engine, BEFORE)

    assert index_layout(engine) == (
        ["thread_id", "key"],
        [(f"ix_{TABLE}_key", ["key", "value", "created_at", "thread_id"])],
        1,
    )


def test_downgrading_to_0011_keeps_every_row(empty_url: URL, engine: Engine) -> None:
    before, _, _ = filled(empty_url, engine)

    migrate.downgrade(engine, BEFORE)

    assert rows(engine, prefix=TABLE_PREFIX) == before


def test_downgrading_to_0011_drops_the_rows_of_threads_deleted_from_outside(empty_url: URL, engine: Engine) -> None:
    migrate.upgrade(engine)
    with Store(empty_url) as store:
        kept = store.langgraph.threads.create(metadata={"user_id": "u1"}).thread_id
        gone = store.langgraph.threads.create(metadata={"user_id": "u1"}).thread_id
    with engine.begin() as connection:  # plain SQL: the thread's index rows stay behind
        connection.exec_driver_sql(f"DELETE FROM {TABLE_PREFIX}langgraph_threads WHERE thread_id = '{gone}'")

    migrate.downgrade(engine, BEFORE)

    with engine.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT thread_id FROM {TABLE}").scalars().all() == [kept]


def test_upgrading_from_0011_keeps_every_row_and_every_objects_api_shape(empty_url: URL, engine: Engine) -> None:
    ids = assert_upgrading_from_keeps_every_row_and_every_objects_api_shape(empty_url, engine, BEFORE)

    (thread,) = ids["langgraph thread"]
    with Store(empty_url) as store:
        assert [found.thread_id for found in store.langgraph.threads.search(metadata={"user_id": "u1"})] == [thread]


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
def test_on_sqlite_both_ways_keep_the_table_without_rowid_and_an_applications_index(engine: Engine) -> None:
    migrate.upgrade(engine, BEFORE)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE INDEX applications_own ON {TABLE} (created_at)")

    for downgrading in (False, True):
        if downgrading:
            migrate.downgrade(engine, BEFORE)
        else:
            migrate.upgrade(engine)
        with engine.connect() as connection:
            query = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?"
            assert str(connection.exec_driver_sql(query, (TABLE,)).scalar_one()).endswith(" WITHOUT ROWID")
        assert ("applications_own", ["created_at"]) in index_layout(engine)[1]
