"""Opening a store inside an application: a PostgreSQL schema of its own, the URL from the
environment, ``postgres://`` URLs, and the modules a SQLite store leaves unimported."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import OPEN_STORE, POSTGRES_URL, SKIP_POSTGRES, count_as_admin
from threadstore import AsyncStore, SchemaOutOfDateError, Store, ValidationError
from threadstore.db import create_engine, normalize_url
from threadstore.tables import names
from threadstore.versions import VERSION_TABLE


@pytest.fixture
def schema_name() -> Iterator[str]:
    """A schema name nobody uses yet; the schema is dropped afterwards if a test made it."""
    name = f"ts_{uuid.uuid4().hex[:12]}"
    yield name
    admin = create_engine(POSTGRES_URL or "")
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    admin.dispose()


def tables_in(schema: str) -> set[str]:
    assert POSTGRES_URL
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.connect() as connection:
            return set(sa.inspect(connection).get_table_names(schema=schema))
    finally:
        admin.dispose()


@SKIP_POSTGRES
@pytest.mark.parametrize("store_kind", list(OPEN_STORE))
def test_a_postgres_store_keeps_its_tables_in_the_schema_it_is_given(schema_name: str, store_kind: str) -> None:
    assert POSTGRES_URL
    with OPEN_STORE[store_kind](POSTGRES_URL, schema=schema_name, migrate_on_open=True) as store:
        thread = store.threads.create()
        assert store.threads.get(thread.id).id == thread.id

    assert tables_in(schema_name) == names()
    assert count_as_admin(f"SELECT count(*) FROM {schema_name}.threadstore_threads") == 1


@SKIP_POSTGRES
def test_a_store_in_a_schema_not_migrated_names_the_command_with_its_schema(schema_name: str) -> None:
    assert POSTGRES_URL
    with (
        Store(POSTGRES_URL, schema=schema_name) as store,
        pytest.raises(SchemaOutOfDateError, match=f"threadstore migrate --url .* --schema {schema_name}"),
    ):
        store.threads.list()


@SKIP_POSTGRES
def test_two_schemas_hold_two_separate_stores(schema_name: str) -> None:
    assert POSTGRES_URL
    other = f"{schema_name}_b"
    try:
        with (
            Store(POSTGRES_URL, schema=schema_name, migrate_on_open=True) as first,
            Store(POSTGRES_URL, schema=other, migrate_on_open=True) as second,
        ):
            first.threads.create()
            assert second.threads.list().data == []
    finally:
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {other} CASCADE")
        admin.dispose()


@pytest.mark.parametrize("schema", ["Agents", "a-b", "x; DROP TABLE runs", ""])
def test_a_schema_name_that_is_not_a_plain_identifier_is_refused(schema: str) -> None:
    with pytest.raises(ValidationError, match="schema"):
        Store("postgresql://nobody@127.0.0.1:1/none", schema=schema)


def test_a_schema_for_sqlite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="PostgreSQL"):
        Store(f"sqlite:///{tmp_path / 'x.db'}", schema="agents")
    with pytest.raises(ValidationError, match="PostgreSQL"):
        AsyncStore(f"sqlite:///{tmp_path / 'x.db'}", schema="agents")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("store_kind", list(OPEN_STORE))
def test_store_without_a_url_opens_threadstore_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store_kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("THREADSTORE_URL", f"sqlite:///{tmp_path / 'from_env.db'}")
    with OPEN_STORE[store_kind]() as store:
        store.threads.create()
    assert (tmp_path / "from_env.db").is_file()
    assert not (tmp_path / "threadstore.db").exists()


def test_an_explicit_url_wins_over_threadstore_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THREADSTORE_URL", f"sqlite:///{tmp_path / 'from_env.db'}")
    Store(f"sqlite:///{tmp_path / 'given.db'}").close()
    assert (tmp_path / "given.db").is_file()
    assert not (tmp_path / "from_env.db").exists()


def test_a_postgres_scheme_is_read_as_postgresql() -> None:
    assert normalize_url("postgres://app@db/agents").drivername == "postgresql+psycopg"


# --- what importing and opening cost -------------------------------------------------------------

IMPORTS = textwrap.dedent(
    """
    import sys
    from threadstore import Store
    import threadstore.tables, threadstore.alembic
    store = Store(sys.argv[1])
    store.threads.create()
    store.close()
    print(" ".join(sorted(name for name in ("psycopg", "alembic", "greenlet") if name in sys.modules)))
    """
)


def imported_by_opening(url: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS, url], capture_output=True, text=True, check=True, timeout=120
    )
    return result.stdout.strip()


def test_opening_a_current_sqlite_store_imports_neither_psycopg_nor_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).close()  # migrated here, in this process

    assert imported_by_opening(url) == ""


def test_a_sqlite_store_behind_imports_alembic_to_migrate(tmp_path: Path) -> None:
    assert imported_by_opening(f"sqlite:///{tmp_path / 'new.db'}") == "alembic"


def test_the_version_table_is_threadstores_own(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).close()
    engine = create_engine(url)
    with engine.connect() as connection:
        assert VERSION_TABLE in sa.inspect(connection).get_table_names()
        assert "alembic_version" not in sa.inspect(connection).get_table_names()
    engine.dispose()


def test_the_imports_benchmark_prints_each_statement_beside_sqlmodel() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.imports", "--repeat", "1"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    lines = result.stdout.splitlines()
    rows = [line.split("|") for line in lines if line.startswith("| `")]
    assert [row[1].strip() for row in rows] == [
        "`import sqlmodel`",
        "`import threadstore`",
        "`from threadstore import Store`",
        "`from threadstore import AsyncStore`",
    ]
    assert rows[0][3].strip() == "1.00"
    assert "alembic" not in lines[-1] and "psycopg" not in lines[-1]


def loaded_by(statement: str) -> list[str]:
    """The modules `statement` loads in a fresh interpreter, of threadstore and SQLAlchemy."""
    script = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return [name for name in loaded.split() if name.split(".")[0] in ("threadstore", "sqlalchemy")]


def test_importing_the_package_loads_none_of_its_modules() -> None:
    assert loaded_by("import threadstore") == ["threadstore"]


def test_the_sync_store_is_imported_without_the_async_one() -> None:
    loaded = loaded_by("from threadstore import Store")
    assert "threadstore.store" in loaded
    assert "threadstore.async_store" not in loaded


def test_a_star_import_binds_every_exported_name() -> None:
    namespace: dict[str, object] = {}
    exec("from threadstore import *", namespace)
    import threadstore

    assert sorted(name for name in namespace if not name.startswith("__")) == sorted(threadstore.__all__)


def test_the_names_type_checkers_see_are_the_names_loaded_on_use() -> None:
    import ast

    import threadstore

    tree = ast.parse(Path(threadstore.__file__).read_text())
    checked = {
        alias.name: node.module
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert checked == threadstore._MODULE_OF
    assert sorted(checked) == sorted(threadstore.__all__)


def test_the_tables_module_alone_names_every_table_a_store_creates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    Store(url).close()
    script = "from threadstore.tables import names; print(' '.join(sorted(names())))"
    alone = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    engine = create_engine(url)
    with engine.connect() as connection:
        assert alone == sorted(sa.inspect(connection).get_table_names())
    engine.dispose()


def test_a_name_the_package_does_not_export_is_an_attribute_error() -> None:
    import threadstore

    with pytest.raises(AttributeError, match="no attribute 'Stor'"):
        threadstore.Stor  # noqa: B018


@SKIP_POSTGRES
def test_alembic_from_the_checkout_migrates_into_a_schema_and_logs_each_revision(schema_name: str) -> None:
    assert POSTGRES_URL
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "THREADSTORE_URL"} | {"PYTHONPATH": str(root / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(root / "alembic.ini"), "-x", f"url={POSTGRES_URL}",
         "-x", f"schema={schema_name}", "upgrade", "head"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Running upgrade  -> 0001" in result.stderr
    assert tables_in(schema_name) == names()
