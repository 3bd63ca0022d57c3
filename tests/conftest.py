"""Fixtures: one store per test on every backend, a controllable clock, and database snapshots.

SQLite always runs. PostgreSQL runs when THREADSTORE_TEST_POSTGRES_URL is set (CI sets it);
each test session works in a schema of its own, emptied after every test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

import threadstore.openai.models  # noqa: F401  (registers the tables)
from tests.blocking import blocking_async_store
from threadstore import Store
from threadstore.db import create_engine
from threadstore.schema import metadata

POSTGRES_ENV = "THREADSTORE_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_ENV)
POSTGRES_HOW = f"set {POSTGRES_ENV}, e.g. postgresql://postgres@127.0.0.1:5432/test"
SKIP_POSTGRES = pytest.mark.skipif(not POSTGRES_URL, reason=f"PostgreSQL tests need {POSTGRES_HOW}")
BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=SKIP_POSTGRES)]


def _needs_postgres(item: pytest.Item) -> bool:
    return any(mark.kwargs.get("reason") == SKIP_POSTGRES.kwargs["reason"] for mark in item.iter_markers("skipif"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a PostgreSQL URL, leave its tests out (one summary line says so) rather than print a
    SKIPPED line for each of them."""
    if POSTGRES_URL:
        return
    postgres = [item for item in items if _needs_postgres(item)]
    if postgres:
        items[:] = [item for item in items if not _needs_postgres(item)]
        config.hook.pytest_deselected(items=postgres)
        config.stash[_LEFT_OUT] = len(postgres)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    left_out = config.stash.get(_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(f"{left_out} PostgreSQL tests not run: to run them, {POSTGRES_HOW}")


_LEFT_OUT = pytest.StashKey[int]()


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    @property
    def seconds(self) -> int:
        return int(self.now.timestamp())


def postgres_url_in_schema(schema: str) -> sa.URL:
    """The test PostgreSQL URL with its search_path set to `schema`."""
    assert POSTGRES_URL
    url = sa.make_url(POSTGRES_URL)
    return url.update_query_dict({"options": f"-csearch_path={schema}"})


@contextmanager
def new_postgres_schema() -> Iterator[str]:
    """The name of a new, empty PostgreSQL schema, dropped on the way out."""
    assert POSTGRES_URL
    name = f"ts_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
        admin.dispose()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A new, empty PostgreSQL schema, dropped afterwards."""
    with new_postgres_schema() as name:
        yield name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database that each test copies instead of migrating anew."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    Store(f"sqlite:///{path}").close()
    return path


@pytest.fixture(scope="session")
def postgres_session_schema() -> Iterator[str]:
    """A PostgreSQL schema migrated once for the whole test session."""
    assert POSTGRES_URL
    name = f"ts_session_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {name}")
    Store(postgres_url_in_schema(name), migrate_on_open=True).close()
    yield name
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.URL]:
    """A migrated, empty database on the test's backend."""
    if backend == "sqlite":
        path = tmp_path / "store.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield sa.make_url(f"sqlite:///{path}")
        return
    url = postgres_url_in_schema(request.getfixturevalue("postgres_session_schema"))
    empty_postgres(url)  # whatever an earlier test left, this one starts empty
    yield url
    empty_postgres(url)


def empty_postgres(url: sa.URL) -> None:
    """Delete every row of threadstore's tables in the schema `url` points at."""
    engine = create_engine(url)
    with engine.begin() as connection:
        tables = ", ".join(table.name for table in metadata.sorted_tables)
        connection.exec_driver_sql(f"TRUNCATE {tables} CASCADE")
    engine.dispose()


# Every behaviour test runs against both stores: Store, and AsyncStore driven from the test's
# sync code (tests/blocking.py).
OPEN_STORE: dict[str, Callable[..., Store]] = {"sync": Store, "async": blocking_async_store}


@pytest.fixture(params=list(OPEN_STORE))
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_url: sa.URL, clock: FakeClock, store_kind: str) -> Iterator[Store]:
    """A store of the test's kind on the test's backend whose clock the test controls."""
    with OPEN_STORE[store_kind](store_url, clock=clock) as opened:
        yield opened


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every threadstore table, to show that a refused call wrote nothing."""
    with store.engine.connect() as connection:
        return {
            table.name: sorted(tuple(repr(v) for v in row) for row in connection.execute(sa.select(table)))
            for table in metadata.sorted_tables
        }


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    """An empty, never migrated database: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        return sa.make_url(f"sqlite:///{tmp_path / 'empty.db'}")
    return postgres_url_in_schema(request.getfixturevalue("pg_schema"))


@pytest.fixture
def engine(empty_url: URL) -> Iterator[Engine]:
    """A threadstore engine on `empty_url`, disposed before the database is dropped."""
    created = create_engine(empty_url)
    yield created
    created.dispose()


def count_as_admin(query: str, **params: object) -> int:
    """The number a counting query gives, run on the test PostgreSQL database as its owner."""
    assert POSTGRES_URL
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as connection:
            return int(connection.execute(sa.text(query), params).scalar_one())
    finally:
        admin.dispose()


@pytest.fixture
def named_store(postgres_session_schema: str, store_kind: str) -> Iterator[tuple[Store, str]]:
    """A PostgreSQL store (sync or async) whose connections carry an application name of their own."""
    name = f"ts_{uuid.uuid4().hex[:10]}"
    url = postgres_url_in_schema(postgres_session_schema).update_query_dict({"application_name": name})
    empty_postgres(url)
    with OPEN_STORE[store_kind](url) as store:
        yield store, name
    empty_postgres(url)
