"""PostgreSQL units of work without a pre-ping: a connection the server dropped while it sat in the
pool is replaced by the unit's first statement, never in the middle of a unit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.blocking import BlockingStore
from tests.conftest import POSTGRES_URL, SKIP_POSTGRES, count_as_admin
from threadstore import StorageError, Store, ValidationError
from threadstore.db import create_async_postgres_engine, create_engine, is_busy
from threadstore.fastsql import _decode_json

pytestmark = SKIP_POSTGRES


def terminate_connections_of(application: str) -> int:
    """Have the server drop every connection of `application`; return how many it dropped."""
    query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"
    return count_as_admin(query, name=application)


@pytest.fixture
def psycopg_connection() -> Iterator[Any]:
    """A psycopg connection of its own (an engine's pool would ask is_busy itself on checkout)."""
    import psycopg

    assert POSTGRES_URL
    with psycopg.connect(sa.make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)) as connection:
        yield connection


def test_a_connection_at_rest_is_not_busy(psycopg_connection: Any) -> None:
    assert not is_busy(psycopg_connection)


def test_a_connection_left_inside_a_transaction_is_busy(psycopg_connection: Any) -> None:
    psycopg_connection.execute("SELECT 1")  # psycopg begins a transaction first

    assert is_busy(psycopg_connection)


def test_a_connection_left_inside_a_pipeline_is_busy(psycopg_connection: Any) -> None:
    with psycopg_connection.pipeline():
        assert is_busy(psycopg_connection)


def test_units_of_work_send_no_ping(named_store: tuple[Store, str]) -> None:
    store, _ = named_store
    opened = store.async_store._store if isinstance(store, BlockingStore) else store
    assert opened.engine.pool._pre_ping is False


def test_a_connection_dropped_between_calls_is_replaced_by_the_next_call(named_store: tuple[Store, str]) -> None:
    store, application = named_store
    thread = store.threads.create()
    assert terminate_connections_of(application) == 1  # the pooled connection, idle between calls

    assert store.threads.get(thread.id) == thread
    assert store.threads.create().id


def test_a_transaction_whose_connection_was_dropped_before_it_began_goes_on(named_store: tuple[Store, str]) -> None:
    store, application = named_store
    store.threads.create()
    terminate_connections_of(application)

    with store.transaction() as tx:
        thread = tx.threads.create()
        tx.messages.create(thread.id, role="user", content="hello")

    assert len(store.messages.list(thread.id)) == 1


def test_a_connection_lost_inside_a_unit_fails_it_and_repeats_nothing(named_store: tuple[Store, str]) -> None:
    store, application = named_store
    with pytest.raises(StorageError), store.transaction() as tx:
        tx.threads.create(metadata={"n": "1"})
        terminate_connections_of(application)
        tx.threads.create(metadata={"n": "2"})

    assert store.threads.list().data == []  # the first create was rolled back with the connection
    assert store.threads.create().id


def test_a_first_statement_refused_for_another_reason_is_not_repeated(named_store: tuple[Store, str]) -> None:
    store, _ = named_store
    with pytest.raises(ValidationError):
        store.threads.get("thread_\x00")  # PostgreSQL refuses NUL in text, on a live connection
    assert store.threads.create().id


BEYOND_64_BITS = "18446744073709551616"  # 2**64: json.loads reads an int, orjson (fastsql's decoder) a float


def test_a_postgresql_engine_reads_json_with_the_decoder_sqlite_values_get() -> None:
    assert POSTGRES_URL
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            value = connection.exec_driver_sql(f"SELECT '{BEYOND_64_BITS}'::jsonb").scalar()
    finally:
        engine.dispose()

    assert value == _decode_json(BEYOND_64_BITS) and isinstance(value, float)


def test_an_async_postgresql_engine_reads_json_with_the_decoder_sqlite_values_get() -> None:
    assert POSTGRES_URL
    engine = create_async_postgres_engine(sa.make_url(POSTGRES_URL))

    async def read() -> Any:
        try:
            async with engine.connect() as connection:
                return (await connection.exec_driver_sql(f"SELECT '{BEYOND_64_BITS}'::jsonb")).scalar()
        finally:
            await engine.dispose()

    value = asyncio.run(read())

    assert value == _decode_json(BEYOND_64_BITS) and isinstance(value, float)
