"""Migration 0010 (the `threadstore_` prefix) keeps every row, both ways, on both backends.

A database at head is filled through the store with rows in every table, taken down to 0007 (the
tables under their old names) and up again: every table's rows are the same at all three points,
and every object's `to_api()` is the same before and after. An application's foreign key to
`threads` follows the rename, and its rows are kept; an index an application put on a
threadstore table keeps its name.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from tests.conftest import FakeClock
from tests.factories import assistant_id
from tests.test_step_related_rows import fill
from threadstore import Store, migrate
from threadstore.records import Json
from threadstore.schema import TABLE_PREFIX, metadata

BEFORE = "0007"
Rows = dict[str, list[tuple[str, ...]]]


def rows(engine: Engine, *, prefix: str) -> Rows:
    """Every row of every threadstore table, keyed by the table's name without the prefix; the
    tables are read under `prefix` + that name."""
    found = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            name = table.name.removeprefix(TABLE_PREFIX)
            selected = connection.exec_driver_sql(f"SELECT * FROM {prefix}{name}")
            found[name] = sorted(tuple(repr(value) for value in row) for row in selected)
    return found


def api_objects(store: Store, ids: dict[str, list[str]]) -> dict[str, Json]:
    """The `to_api()` of every object `ids` names, and of each list that holds them."""
    objects: dict[str, Json] = {}
    for kind, keys in ids.items():
        for key in keys:
            objects[f"{kind} {key}"] = API[kind](store, key)
    return objects


API: dict[str, Any] = {
    "assistant": lambda s, key: s.assistants.get(key).to_api(),
    "thread": lambda s, key: s.threads.get(key).to_api(),
    "messages": lambda s, key: s.messages.list(key, order="asc", limit=100).to_api(),
    "runs": lambda s, key: s.runs.list(key, order="asc", limit=100).to_api(),
    "steps": lambda s, key: s.run_steps.list(key, order="asc", limit=100).to_api(),
    "langgraph thread": lambda s, key: s.langgraph.threads.get(key).to_api(),
    "langgraph run": lambda s, key: s.langgraph.runs.get(key).to_api(),
    "events": lambda s, key: [event.to_api() for event in s.events.list(thread_id=key, limit=1000)],
    "conversation": lambda s, key: s.conversations.get(key).to_api(),
    "conversation items": lambda s, key: s.conversations.items.list(key, order="asc", limit=100).to_api(),
    "response": lambda s, key: s.responses.get(key).to_api(),
    "input items": lambda s, key: s.responses.input_items.list(key, order="asc", limit=100).to_api(),
}


def filled(url: URL, engine: Engine) -> tuple[Rows, dict[str, Json], dict[str, list[str]]]:
    """A database at head with rows in every table: its rows, its API objects and their ids."""
    migrate.upgrade(engine)
    with Store(url, clock=FakeClock()) as store:
        thread = store.threads.create(messages=[{"role": "user", "content": "Hello"}], metadata={"k": "v"}).id
        run = fill(store, thread)
        graph_thread = store.langgraph.threads.create(metadata={"user_id": "u1"}).thread_id
        first = store.langgraph.runs.create(graph_thread, assistant_id="agent").run_id
        second = store.langgraph.runs.create(graph_thread, assistant_id="agent").run_id
        conversation = store.conversations.create(items=[{"type": "message", "role": "user", "content": "Hi"}]).id
        response = store.responses.create(model="gpt-4o", input="Question", conversation=conversation).id
        store.responses.complete(response, usage={"input_tokens": 1, "output_tokens": 1})
        follow_up = store.responses.create(model="gpt-4o", input="More", previous_response_id=response).id
        ids = {
            "assistant": [assistant.id for assistant in store.assistants.list(limit=100).data],
            "thread": [thread],
            "messages": [thread],
            "runs": [thread],
            "steps": [run],
            "langgraph thread": [graph_thread],
            "langgraph run": [first, second],
            "events": [thread, graph_thread, response],
            "conversation": [conversation],
            "conversation items": [conversation],
            "response": [response, follow_up],
            "input items": [response, follow_up],
        }
        objects = api_objects(store, ids)
    before = rows(engine, prefix=TABLE_PREFIX)
    assert all(before.values()), f"empty tables: {[name for name, found in before.items() if not found]}"
    return before, objects, ids


def assert_upgrading_from_keeps_every_row_and_every_objects_api_shape(
    url: URL, engine: Engine, revision: str
) -> dict[str, list[str]]:
    """Fill a database at head, take it down to `revision` and up again: every row and every API
    object is as it was. Returns the objects' ids."""
    before, objects, ids = filled(url, engine)
    migrate.downgrade(engine, revision)

    migrate.upgrade(engine)

    assert rows(engine, prefix=TABLE_PREFIX) == before
    with Store(url) as store:
        assert api_objects(store, ids) == objects
    return ids


def test_downgrading_to_0007_keeps_every_row_under_the_old_names(empty_url: URL, engine: Engine) -> None:
    before, _, _ = filled(empty_url, engine)

    migrate.downgrade(engine, BEFORE)

    assert rows(engine, prefix="") == before
    with engine.connect() as connection:
        assert not set(sa.inspect(connection).get_table_names()) & set(metadata.tables)


def test_upgrading_from_0007_keeps_every_row_and_every_objects_api_shape(empty_url: URL, engine: Engine) -> None:
    assert_upgrading_from_keeps_every_row_and_every_objects_api_shape(empty_url, engine, BEFORE)


def test_after_the_upgrade_new_rows_are_numbered_after_the_old_ones(empty_url: URL, engine: Engine) -> None:
    """The sequences (PostgreSQL's serials and the LangGraph runs' order) follow their tables."""
    _, _, ids = filled(empty_url, engine)
    migrate.downgrade(engine, BEFORE)
    migrate.upgrade(engine)

    with Store(empty_url, clock=FakeClock()) as store:
        (graph_thread,) = ids["langgraph thread"]
        run = store.langgraph.runs.create(graph_thread, assistant_id="agent").run_id
        (thread,) = ids["thread"]
        step_run = fill(store, thread)
    with engine.connect() as connection:
        seqs: dict[str, int] = dict(
            connection.exec_driver_sql(f"SELECT run_id, seq FROM {TABLE_PREFIX}langgraph_runs").all()
        )
        details: dict[str, int] = dict(
            connection.exec_driver_sql(
                f"SELECT run_id, max(id) FROM {TABLE_PREFIX}run_step_details GROUP BY run_id"
            ).all()
        )
    assert seqs[run] > max(seq for run_id, seq in seqs.items() if run_id != run)
    assert details[step_run] > max(key for run_id, key in details.items() if run_id != step_run)


def test_an_applications_foreign_key_to_threads_follows_the_rename_and_keeps_its_rows(
    empty_url: URL, engine: Engine
) -> None:
    migrate.upgrade(engine, BEFORE)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE tickets (id INTEGER PRIMARY KEY,"
            " thread_id VARCHAR NOT NULL REFERENCES threads (id) ON DELETE CASCADE)"
        )
        connection.exec_driver_sql("INSERT INTO threads (id, created_at, metadata) VALUES ('thread_1', 1, '{}')")
        connection.exec_driver_sql("INSERT INTO tickets (id, thread_id) VALUES (1, 'thread_1')")
        connection.exec_driver_sql("CREATE INDEX tickets_on_threads ON threads (created_at)")

    migrate.upgrade(engine)

    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        assert [fk["referred_table"] for fk in inspector.get_foreign_keys("tickets")] == [f"{TABLE_PREFIX}threads"]
        assert "tickets_on_threads" in {index["name"] for index in inspector.get_indexes(f"{TABLE_PREFIX}threads")}
        assert connection.exec_driver_sql("SELECT thread_id FROM tickets").scalars().all() == ["thread_1"]
    with Store(empty_url) as store:
        store.threads.delete("thread_1")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM tickets").scalar() == 0


def test_downgrading_takes_an_applications_foreign_key_back_to_threads(empty_url: URL, engine: Engine) -> None:
    migrate.upgrade(engine)
    with Store(empty_url) as store:
        thread = store.threads.create().id
        store.runs.create(thread, assistant_id=assistant_id(store))
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TABLE tickets (id INTEGER PRIMARY KEY,"
            f" thread_id VARCHAR NOT NULL REFERENCES {TABLE_PREFIX}threads (id) ON DELETE CASCADE)"
        )
        connection.execute(sa.text("INSERT INTO tickets (id, thread_id) VALUES (1, :thread)"), {"thread": thread})

    migrate.downgrade(engine, BEFORE)

    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        assert [fk["referred_table"] for fk in inspector.get_foreign_keys("tickets")] == ["threads"]
        assert connection.exec_driver_sql("SELECT thread_id FROM tickets").scalars().all() == [thread]
