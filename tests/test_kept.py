"""A sync PostgreSQL store keeps its pool itself (threadstore.kept): sized by the engine's pool
options, callers that wait served in arrival order, connections beyond `pool_size` closed when
given back, and nothing left lent when calls end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.conftest import SKIP_POSTGRES, count_as_admin, postgres_url_in_schema
from threadstore import Store
from threadstore.kept import KeptConnections

pytestmark = SKIP_POSTGRES


@pytest.fixture
def url(postgres_session_schema: str) -> sa.URL:
    name = f"ts_kept_{time.monotonic_ns() % 10**9}"
    return postgres_url_in_schema(postgres_session_schema).update_query_dict({"application_name": name})


def open_connections(url: sa.URL) -> int:
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"
    return count_as_admin(query, name=url.query["application_name"])


def kept_of(store: Store) -> KeptConnections:
    kept = store._engine_scope._kept
    assert kept is not None
    return kept


@pytest.fixture
def store_of_one(url: sa.URL) -> Iterator[Store]:
    with Store(url, engine_options={"pool_size": 1, "max_overflow": 0, "pool_timeout": 20}) as store:
        yield store


def test_callers_that_wait_for_a_connection_are_served_in_arrival_order(store_of_one: Store) -> None:
    store = store_of_one
    thread = store.threads.create().id
    served: list[int] = []

    def call(index: int) -> None:
        store.messages.create(thread, role="user", content=str(index))
        served.append(index)

    callers = [threading.Thread(target=call, args=(index,)) for index in range(5)]
    with store.transaction() as tx:  # holds the store's one connection while the callers line up
        tx.threads.get(thread)
        for index, caller in enumerate(callers):
            caller.start()
            while len(kept_of(store)._waiters) <= index:  # in line before the next one starts
                time.sleep(0.001)
    for caller in callers:
        caller.join()
    assert served == [0, 1, 2, 3, 4]


def test_a_store_opens_no_more_connections_than_its_pool_allows(url: sa.URL) -> None:
    options = {"pool_size": 2, "max_overflow": 1, "pool_timeout": 20}
    with Store(url, engine_options=options) as store:
        thread = store.threads.create().id
        inside, leave = threading.Barrier(4), threading.Event()

        def hold_a_unit() -> None:
            with store._engine_scope.read():
                inside.wait(10)
                leave.wait(10)

        holders = [threading.Thread(target=hold_a_unit) for _ in range(3)]
        for holder in holders:
            holder.start()
        inside.wait(10)
        assert open_connections(url) == 3 and kept_of(store).lent() == 3
        leave.set()
        for holder in holders:
            holder.join()
        store.messages.create(thread, role="user", content="after")
        assert open_connections(url) == 2  # the overflow's connection was closed when given back
        assert kept_of(store).lent() == 0
