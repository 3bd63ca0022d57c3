"""LangGraph thread search by metadata is indexed and keeps its `@>` semantics: its results are a
plain model's containment check over the threads, the SQLite index table never disagrees with the
metadata, and the query plans use the indexes on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SKIP_POSTGRES, FakeClock
from threadstore import Store
from threadstore.fastsql import Raw, Statement
from threadstore.langgraph.metadata_index import token
from threadstore.langgraph.models import thread_metadata

KEYS = ["user_id", "org", "n", "tags"]
SCALARS = st.sampled_from(["a", "b", "1", "", 1, 1.0, 2, 0, -0.0, 2**53 + 1, True, False, None])
VALUES = SCALARS | st.lists(SCALARS, max_size=3) | st.dictionaries(st.sampled_from(["x", "y"]), SCALARS, max_size=2)
METADATA = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4)
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), METADATA),
        st.tuples(st.just("update"), st.integers(0, 20), METADATA),
        st.tuples(st.just("delete"), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=12,
)
SEARCH = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def contains(stored: Any, wanted: Any) -> bool:
    """PostgreSQL's jsonb `@>`, written plainly: objects hold the wanted keys, arrays hold each
    wanted element, scalars are equal (numbers by value; true is not 1)."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(key in stored and contains(stored[key], w) for key, w in wanted.items())
    if isinstance(wanted, list):
        return isinstance(stored, list) and all(any(contains(s, w) for s in stored) for w in wanted)
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return type(wanted) is type(stored) and wanted == stored
    if wanted is None or stored is None:
        return wanted is stored
    if isinstance(wanted, str) or isinstance(stored, str):
        return type(wanted) is type(stored) and wanted == stored
    return bool(stored == wanted)


def apply(store: Store, actions: list[Any]) -> dict[str, dict[str, Any]]:
    """Run the actions on the store and on a model of thread id → metadata; return the model."""
    model: dict[str, dict[str, Any]] = {}
    for action in actions:
        ids = list(model)  # in creation order: ids are random, the order of actions is not
        if action[0] == "create":
            model[store.langgraph.threads.create(metadata=action[1]).thread_id] = dict(action[1])
        elif ids and action[0] == "update":
            chosen = ids[action[1] % len(ids)]
            store.langgraph.threads.update(chosen, metadata=action[2])
            model[chosen] = {**model[chosen], **action[2]}
        elif ids:
            chosen = ids[action[1] % len(ids)]
            store.langgraph.threads.delete(chosen)
            del model[chosen]
    return model


def emptied(store: Store) -> Store:
    for thread in store.langgraph.threads.search(limit=1000):
        store.langgraph.threads.delete(thread.thread_id)
    return store


def same_value(value: Any) -> Any:
    """Another spelling of the same JSON value: 1 as 1.0, 1.0 as 1, an element of an array."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return value[:1]
    return value


@st.composite
def filters_of(draw: st.DrawFn, model: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A filter: made up, or part of a stored thread's metadata (respelled or not), so that many
    filters match something."""
    if not model or draw(st.booleans()):
        return draw(METADATA)
    meta = model[draw(st.sampled_from(list(model)))]
    keys = draw(st.lists(st.sampled_from(sorted(meta)), unique=True)) if meta else []
    respell = draw(st.booleans())
    return {key: same_value(meta[key]) if respell else meta[key] for key in keys}


@given(actions=ACTIONS, data=st.data())
@SEARCH
def test_search_finds_exactly_the_threads_whose_metadata_contains_the_filter(
    store: Store, actions: list[Any], data: st.DataObject
) -> None:
    model = apply(emptied(store), actions)
    for _ in range(4):
        wanted = data.draw(filters_of(model))
        found = store.langgraph.threads.search(metadata=wanted, limit=1000)
        assert sorted(t.thread_id for t in found) == sorted(i for i, meta in model.items() if contains(meta, wanted))
        newest = store.langgraph.threads.search(metadata=wanted, limit=2, sort_by="created_at")
        assert newest == sorted(found, key=lambda t: (t.created_at, t.thread_id), reverse=True)[:2]


@given(actions=ACTIONS)
@SEARCH
def test_the_index_table_never_disagrees_with_the_metadata(store: Store, actions: list[Any]) -> None:
    model = apply(emptied(store), actions)
    with store.engine.connect() as connection:
        indexed = {tuple(row) for row in connection.execute(sa.select(*thread_metadata.c))}
    created = {t.thread_id: t.created_at for t in store.langgraph.threads.search(limit=1000)}
    expected = {
        (thread_id, key, token(value), created[thread_id])
        for thread_id, meta in model.items()
        for key, value in meta.items()
        if not isinstance(value, dict | list)
    }
    assert indexed == expected


# --- query plans -----------------------------------------------------------------------------------


@pytest.fixture
def searches(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """The SQL and parameters of each statement the store runs with Raw.rows."""
    seen: list[tuple[str, Any]] = []
    real = Raw.rows

    def recording(raw: Raw, statement: Statement, params: Any = None) -> list[dict[str, Any]]:
        prepared = statement.prepare(raw.dialect)
        seen.append((prepared.sql, statement.bind(prepared, params or {})))
        return real(raw, statement, params)

    monkeypatch.setattr(Raw, "rows", recording)
    yield seen


def explain(store: Store, sql: str, params: Any) -> str:
    prefix = "EXPLAIN QUERY PLAN " if store.engine.dialect.name == "sqlite" else "EXPLAIN "
    connection = store.engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute(prefix + sql, params)
        return "\n".join(" ".join(str(value) for value in row) for row in cursor.fetchall())
    finally:
        connection.close()


def bulk_load(store: Store, threads: int, users: int) -> None:
    """`threads` threads over `users` users, written with plain SQL (as the benchmark does)."""
    with store.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(
                "INSERT INTO threadstore_langgraph_threads (thread_id, created_at, updated_at, metadata, status)"
                " SELECT md5(i::text)::uuid::text, i, i, jsonb_build_object('user_id', 'u' || (i %% %(users)s)), 'idle'"
                " FROM generate_series(1, %(threads)s) AS i",
                {"users": users, "threads": threads},
            )
            connection.exec_driver_sql(
                "INSERT INTO threadstore_langgraph_thread_metadata (thread_id, key, value, created_at)"
                " SELECT thread_id, 'user_id', 's:' || (metadata->>'user_id'), created_at FROM"
                " threadstore_langgraph_threads"
            )
            connection.exec_driver_sql("ANALYZE")
            return
    for i in range(threads):
        store.langgraph.threads.create(metadata={"user_id": f"u{i % users}", "n": i})


@pytest.mark.parametrize("store_kind", ["sync"])
def test_search_by_metadata_reads_the_index_not_every_thread(store: Store, searches: list[tuple[str, Any]]) -> None:
    # On PostgreSQL 200 threads a user: enough that reading them all through the GIN index looks
    # cheap to the planner, which must not be given the choice.
    bulk_load(
        store,
        20_000 if store.engine.dialect.name == "postgresql" else 600,
        100 if store.engine.dialect.name == "postgresql" else 50,
    )
    searches.clear()
    found = store.langgraph.threads.search(metadata={"user_id": "u7"}, limit=10)
    assert len(found) == 10 and all(t.metadata["user_id"] == "u7" for t in found)
    (sql, params), *_ = searches
    plan = explain(store, sql, params)
    by_index = {
        "sqlite": "SEARCH threadstore_langgraph_thread_metadata USING PRIMARY KEY (key=? AND value=?)",
        "postgresql": "Scan Backward using pk_threadstore_langgraph_thread_metadata on",
    }
    assert by_index[store.engine.dialect.name] in plan, plan
    assert "SCAN threadstore_langgraph_threads" not in plan and "Seq Scan" not in plan, plan
    assert "ix_threadstore_langgraph_threads_metadata" not in plan, plan


@SKIP_POSTGRES
@pytest.mark.parametrize(("backend", "store_kind"), [("postgres", "sync")])
def test_a_filter_without_a_scalar_entry_reads_the_gin_index_on_postgresql(
    store: Store, searches: list[tuple[str, Any]]
) -> None:
    bulk_load(store, 20_000, 1000)
    with store.engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE threadstore_langgraph_threads"
            " SET metadata = metadata || jsonb_build_object('tags', jsonb_build_array(created_at))"
        )
        connection.exec_driver_sql("ANALYZE threadstore_langgraph_threads")
    searches.clear()
    assert len(store.langgraph.threads.search(metadata={"tags": [7]}, limit=10)) == 1
    (sql, params), *_ = searches
    plan = explain(store, sql, params)
    assert "ix_threadstore_langgraph_threads_metadata" in plan and "Seq Scan" not in plan, plan


@SKIP_POSTGRES
@pytest.mark.parametrize(("backend", "store_kind"), [("postgres", "sync")])
def test_a_search_by_one_entry_keeps_one_plan_on_postgresql(store: Store, searches: list[tuple[str, Any]]) -> None:
    """Not planned anew on every call: with 200 threads a user, PostgreSQL's plan made knowing the
    page (10 rows) would look cheaper than the one it keeps, which guesses a tenth of them."""
    bulk_load(store, 20_000, 100)
    store.langgraph.threads.search(metadata={"user_id": "u7"}, limit=10)
    (sql, params), *_ = searches
    connection = store.engine.raw_connection()
    try:
        cursor: Any = connection.cursor()
        for user in range(10):  # as psycopg does after five calls: a prepared statement
            cursor.execute(sql, {**params, "narrow_value": f"s:u{user}"}, prepare=True)
        cursor.execute("SELECT generic_plans FROM pg_prepared_statements WHERE statement LIKE '%thread_metadata%'")
        assert cursor.fetchall() == [(5,)]  # its first five plans are custom, by PostgreSQL's rule
    finally:
        connection.close()


# --- rows left by a thread deleted from outside ------------------------------------------------------


def delete_from_outside(store: Store, thread_id: str) -> None:
    """Delete the thread with plain SQL, as an application's own script might: its index rows stay."""
    with store.engine.begin() as connection:
        connection.execute(
            sa.text("DELETE FROM threadstore_langgraph_threads WHERE thread_id = :id"), {"id": thread_id}
        )


def test_a_search_does_not_find_a_thread_deleted_from_outside(store: Store) -> None:
    gone = store.langgraph.threads.create(metadata={"user_id": "u1"}).thread_id
    kept = store.langgraph.threads.create(metadata={"user_id": "u1"}).thread_id

    delete_from_outside(store, gone)

    assert [t.thread_id for t in store.langgraph.threads.search(metadata={"user_id": "u1"})] == [kept]


def test_a_thread_made_again_with_the_id_of_one_deleted_from_outside_is_found_once(store: Store) -> None:
    thread_id = store.langgraph.threads.create(metadata={"user_id": "u1"}).thread_id
    delete_from_outside(store, thread_id)
    store.langgraph.threads.create(thread_id=thread_id, metadata={"user_id": "u1"})

    assert [t.thread_id for t in store.langgraph.threads.search(metadata={"user_id": "u1"})] == [thread_id]


def test_a_thread_made_again_with_other_metadata_is_not_found_by_its_old_metadata(
    store: Store, clock: FakeClock
) -> None:
    thread_id = store.langgraph.threads.create(metadata={"user_id": "u1"}).thread_id
    delete_from_outside(store, thread_id)
    clock.advance(0.000001)  # a new creation time: the old row is not the new thread's
    store.langgraph.threads.create(thread_id=thread_id, metadata={"user_id": "u2"})

    assert store.langgraph.threads.search(metadata={"user_id": "u1"}) == []


# --- what a create sends ---------------------------------------------------------------------------


@SKIP_POSTGRES
@pytest.mark.parametrize(("backend", "store_kind"), [("postgres", "sync")])
def test_on_postgresql_a_create_writes_the_thread_and_its_index_rows_in_one_statement(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    real = Raw.execute

    def recording(raw: Raw, statement: Statement, params: Any = None) -> Any:
        sent.append(statement.prepare(raw.dialect).sql)
        return real(raw, statement, params)

    monkeypatch.setattr(Raw, "execute", recording)

    thread = store.langgraph.threads.create(metadata={"user_id": "u1", "org": "o1", "tags": ["a"]})

    (insert,) = [sql for sql in sent if sql.lstrip().startswith(("INSERT", "WITH"))]
    assert "threadstore_langgraph_thread_metadata" in insert and "threadstore_langgraph_threads" in insert
    with store.engine.connect() as connection:
        indexed = connection.execute(sa.select(thread_metadata.c.key, thread_metadata.c.value)).all()
    assert sorted(indexed) == [("org", "s:o1"), ("user_id", "s:u1")]
    assert store.langgraph.threads.search(metadata={"org": "o1"}) == [thread]
