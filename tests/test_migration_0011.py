"""Migration 0011 (SQLite's thread metadata index as a WITHOUT ROWID table) keeps every row, both
ways, on both backends; on SQLite it makes the table WITHOUT ROWID and its downgrade gives back
the table as it was, with every index on it, an application's too.
"""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL, Engine

from tests.test_migration_0010 import assert_upgrading_from_keeps_every_row_and_every_objects_api_shape, filled, rows
from threadstore import Store, migrate
from threadstore.schema import TABLE_PREFIX

BEFORE = "0010"
TABLE = "threadstore_langgraph_thread_metadata"


def table_sql(engine: Engine) -> str:
    with engine.connect() as connection:
        query = "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?"
        return str(connection.exec_driver_sql(query, (TABLE,)).scalar_one())


def index_names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL"
        return set(connection.exec_driver_sql(query, (TABLE,)).scalars())


def test_downgrading_to_0010_keeps_every_row(empty_url: URL, engine: Engine) -> None:
    before, _, _ = filled(empty_url, engine)

    migrate.downgrade(engine, BEFORE)

    assert rows(engine, prefix=TABLE_PREFIX) == before


def test_upgrading_from_0010_keeps_every_row_and_every_objects_api_shape(empty_url: URL, engine: Engine) -> None:
    ids = assert_upgrading_from_keeps_every_row_and_every_objects_api_shape(empty_url, engine, BEFORE)

    (thread,) = ids["langgraph thread"]
    with Store(empty_url) as store:
        assert [found.thread_id for found in store.langgraph.threads.search(metadata={"user_id": "u1"})] == [thread]


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
def test_on_sqlite_the_upgrade_makes_the_table_without_rowid(engine: Engine) -> None:
    migrate.upgrade(engine, BEFORE)
    assert not table_sql(engine).endswith("WITHOUT ROWID")

    migrate.upgrade(engine)

    assert table_sql(engine).endswith(") WITHOUT ROWID")


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
def test_on_sqlite_the_downgrade_gives_back_the_table_as_it_was_with_its_indexes(engine: Engine) -> None:
    migrate.upgrade(engine, BEFORE)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE INDEX applications_own ON {TABLE} (created_at)")
    at_0010 = table_sql(engine), index_names(engine)
    migrate.upgrade(engine, "0011")
    assert index_names(engine) == at_0010[1]

    migrate.downgrade(engine, BEFORE)

    assert (table_sql(engine), index_names(engine)) == at_0010
    assert "applications_own" in at_0010[1]
