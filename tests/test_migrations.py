"""Migrations: the script directory, upgrade and downgrade on both backends, the models matching the
migrated schema, migrate-on-open and its refusal on PostgreSQL, the `threadstore migrate` and
`alembic` commands, migrating from an installed wheel, and a failed upgrade leaving the schema old.

Every test starts from an empty database: a new SQLite file, or a new PostgreSQL schema.
"""

from __future__ import annotations

import multiprocessing
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Engine

import threadstore.openai.models  # noqa: F401  (registers the tables)
from tests.conftest import SKIP_POSTGRES, postgres_url_in_schema
from threadstore import SchemaOutOfDateError, StorageError, Store, migrate, versions
from threadstore.alembic import built_on
from threadstore.cli import main as cli_main
from threadstore.db import create_engine, normalize_url
from threadstore.schema import metadata
from threadstore.versions import VERSION_TABLE

REPO_ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS_DIR = REPO_ROOT / "migrations"
TABLES = {table.name for table in metadata.sorted_tables}
SUBPROCESS_TIMEOUT = 300


# --- fixtures and helpers -------------------------------------------------------------------------


def script_directory() -> ScriptDirectory:
    """The checkout's migrations, read without going through threadstore.migrate."""
    return ScriptDirectory(str(MIGRATIONS_DIR))


def checkout_head() -> str:
    head = script_directory().get_current_head()
    assert head is not None
    return head


def recorded_revisions(engine: Engine) -> list[str]:
    """The rows of threadstore's version table, or [] when the table is missing or empty."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(VERSION_TABLE):
            return []
        return sorted(connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").scalars())


def table_names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(sa.inspect(connection).get_table_names())


def schema_snapshot(engine: Engine) -> dict[str, dict[str, list[Any]]]:
    """The reflected schema of every table but the version table, in a comparable form."""
    snapshot: dict[str, dict[str, list[Any]]] = {}
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        for table in sorted(inspector.get_table_names()):
            if table == VERSION_TABLE:
                continue
            snapshot[table] = {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                "primary_key": list(inspector.get_pk_constraint(table)["constrained_columns"]),
                "indexes": sorted(
                    (
                        (
                            index["name"],
                            tuple(index["column_names"]),
                            bool(index["unique"]),
                            sorted((key, str(value)) for key, value in index.get("dialect_options", {}).items()),
                        )
                        for index in inspector.get_indexes(table)
                    ),
                    key=repr,
                ),
                "foreign_keys": sorted(
                    (
                        (
                            fk["name"],
                            tuple(fk["constrained_columns"]),
                            fk["referred_table"],
                            tuple(fk["referred_columns"]),
                            fk["options"].get("ondelete"),
                        )
                        for fk in inspector.get_foreign_keys(table)
                    ),
                    key=repr,
                ),
                "check_constraints": sorted((ck["name"] for ck in inspector.get_check_constraints(table)), key=repr),
            }
    return snapshot


def url_text(url: URL) -> str:
    """`url` as a string a subprocess can use (password kept)."""
    return url.render_as_string(hide_password=False)


def subprocess_env(**extra: str) -> dict[str, str]:
    """The current environment without THREADSTORE_URL (which would override alembic.ini)."""
    env = {key: value for key, value in os.environ.items() if key not in ("THREADSTORE_URL", "PYTHONPATH")}
    env.update(extra)
    return env


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `args`, failing the test with its output if it exits non-zero."""
    result = subprocess.run(
        args,
        cwd=cwd,
        env=env if env is not None else subprocess_env(),
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{args} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


# --- the script directory -------------------------------------------------------------------------


def test_script_directory_has_exactly_one_head() -> None:
    heads = script_directory().get_heads()
    assert len(heads) == 1, f"migrations have {len(heads)} heads: {heads}"
    assert migrate.head() == heads[0]


# --- upgrade and downgrade ------------------------------------------------------------------------


def test_upgrade_on_empty_database_creates_every_table_and_records_head(engine: Engine) -> None:
    assert table_names(engine) == set()

    migrate.upgrade(engine)

    assert table_names(engine) == TABLES | {VERSION_TABLE}
    assert recorded_revisions(engine) == [checkout_head()]


def test_models_match_migrated_schema(engine: Engine) -> None:
    migrate.upgrade(engine)

    with engine.connect() as connection:
        options = {
            "compare_type": True,
            "version_table": VERSION_TABLE,
            "include_object": built_on(connection.dialect.name),
        }
        context = MigrationContext.configure(connection, opts=options)
        differences = compare_metadata(context, metadata)

    assert differences == []


def test_partial_indexes_of_the_models_are_partial_in_the_migrated_schema(engine: Engine) -> None:
    # compare_metadata does not compare the WHERE of an index, so this test does.
    migrate.upgrade(engine)
    option = f"{engine.dialect.name}_where"

    inspector = sa.inspect(engine)
    migrated = {
        index["name"]
        for table in TABLES
        for index in inspector.get_indexes(table)
        if index.get("dialect_options", {}).get(option) is not None
    }

    indexes = [index for table in metadata.sorted_tables for index in table.indexes]
    modelled = {index.name for index in indexes if index.kwargs.get(option) is not None}
    assert "ix_threadstore_messages_run_id" in modelled
    assert migrated == modelled


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
def test_tables_the_models_make_without_rowid_are_without_rowid_in_the_migrated_schema(engine: Engine) -> None:
    # compare_metadata does not compare a table's kind either.
    migrate.upgrade(engine)

    with engine.connect() as connection:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
        created: dict[str, str] = dict(connection.exec_driver_sql(query).all())
    migrated = {name for name in TABLES if created[name].endswith(" WITHOUT ROWID")}

    tables = metadata.sorted_tables
    modelled = {table.name for table in tables if table.dialect_options["sqlite"]["with_rowid"] is False}
    assert "threadstore_langgraph_thread_metadata" in modelled
    assert migrated == modelled


def test_every_downgrade_runs_one_revision_at_a_time_down_to_base(engine: Engine) -> None:
    migrate.upgrade(engine)
    walked = []

    for script in script_directory().walk_revisions(base="base", head="heads"):
        assert recorded_revisions(engine) == [script.revision], "the walk is not linear"
        down = script.down_revision
        assert down is None or isinstance(down, str), f"{script.revision} is a merge; walk it by hand"
        migrate.downgrade(engine, down or "base")
        assert recorded_revisions(engine) == ([down] if down else [])
        walked.append(script.revision)

    assert walked, "no revisions were walked"
    assert walked[0] == checkout_head()
    assert table_names(engine) & TABLES == set()


def test_upgrade_downgrade_upgrade_leaves_the_same_schema(engine: Engine) -> None:
    migrate.upgrade(engine)
    before = schema_snapshot(engine)
    assert set(before) == TABLES

    migrate.downgrade(engine, "base")
    assert schema_snapshot(engine) == {}
    migrate.upgrade(engine)

    assert schema_snapshot(engine) == before


def test_failed_upgrade_leaves_schema_wholly_old(engine: Engine) -> None:
    # run_step_usages is created last: every other table exists by the time its CREATE TABLE fails.
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE run_step_usages (conflicting INTEGER)")

    with pytest.raises(StorageError, match="run_step_usages") as raised:
        migrate.upgrade(engine)

    assert isinstance(raised.value.__cause__, sa.exc.DBAPIError)
    assert table_names(engine) == {"run_step_usages"}
    assert recorded_revisions(engine) == []
    with engine.connect() as connection:
        columns = [column["name"] for column in sa.inspect(connection).get_columns("run_step_usages")]
    assert columns == ["conflicting"]


# --- Store: migrate on open, or refuse a schema that is behind ------------------------------------


def test_new_sqlite_store_upgrades_itself_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"

    with Store(url) as store:
        assert recorded_revisions(store.engine) == [checkout_head()]
        assert table_names(store.engine) >= TABLES
        assert store.threads.list().data == []


def _behind_store(url: URL, engine: Engine) -> Store:
    """A store on a database one revision behind head (never migrated when head is the first)."""
    down = script_directory().get_revision(checkout_head()).down_revision
    if down is not None:
        assert isinstance(down, str)
        migrate.upgrade(engine, down)
    # PostgreSQL stores do not migrate on open by default; a SQLite one must be told not to.
    return Store(url, migrate_on_open=False) if url.get_backend_name() == "sqlite" else Store(url)


def test_store_behind_raises_schema_out_of_date_with_fix_command_until_migrated(empty_url: URL, engine: Engine) -> None:
    expected = f"threadstore migrate --url '{normalize_url(empty_url).render_as_string(hide_password=True)}'"

    with _behind_store(empty_url, engine) as store:
        behind = recorded_revisions(engine)
        with pytest.raises(SchemaOutOfDateError) as raised:
            store.threads.list()
        assert expected in str(raised.value)
        assert recorded_revisions(engine) == behind

        store.migrate()

        assert store.threads.list().data == []
        assert recorded_revisions(engine) == [checkout_head()]


def test_command_in_schema_out_of_date_message_migrates_the_database(empty_url: URL, engine: Engine) -> None:
    with _behind_store(empty_url, engine) as store:
        with pytest.raises(SchemaOutOfDateError) as raised:
            store.threads.list()
        program, *argv = shlex.split(str(raised.value).split("Run: ", 1)[1])
        assert program == "threadstore"

        assert cli_main(argv) == 0

        assert store.threads.list().data == []
        assert recorded_revisions(engine) == [checkout_head()]


# --- the command lines ----------------------------------------------------------------------------


def test_cli_migrate_brings_empty_database_to_head_and_rerun_is_a_noop(
    empty_url: URL, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["migrate", "--url", url_text(empty_url)]

    assert cli_main(argv) == 0
    assert f"revision {checkout_head()}" in capsys.readouterr().out
    assert recorded_revisions(engine) == [checkout_head()]
    schema = schema_snapshot(engine)
    assert set(schema) == TABLES
    with Store(empty_url) as store:
        thread = store.threads.create(metadata={"kept": "yes"})

    assert cli_main(argv) == 0

    assert recorded_revisions(engine) == [checkout_head()]
    assert schema_snapshot(engine) == schema
    with Store(empty_url) as store:
        assert store.threads.get(thread.id).metadata == {"kept": "yes"}


def test_cli_migrate_subprocess_brings_empty_database_to_head_and_rerun_is_a_noop(
    empty_url: URL, engine: Engine, tmp_path: Path
) -> None:
    args = [sys.executable, "-m", "threadstore.cli", "migrate", "--url", url_text(empty_url)]

    first = run(args, cwd=tmp_path)
    assert f"revision {checkout_head()}" in first.stdout
    assert recorded_revisions(engine) == [checkout_head()]
    schema = schema_snapshot(engine)
    assert set(schema) == TABLES

    run(args, cwd=tmp_path)

    assert recorded_revisions(engine) == [checkout_head()]
    assert schema_snapshot(engine) == schema


def test_alembic_upgrade_head_from_checkout(empty_url: URL, engine: Engine) -> None:
    alembic = shutil.which("alembic", path=str(Path(sys.executable).parent)) or shutil.which("alembic")
    assert alembic is not None, "the alembic command is not installed"

    run(
        [alembic, "-c", str(REPO_ROOT / "alembic.ini"), "-x", f"url={url_text(empty_url)}", "upgrade", "head"],
        cwd=REPO_ROOT,
    )

    assert recorded_revisions(engine) == [checkout_head()]
    assert table_names(engine) == TABLES | {VERSION_TABLE}


# --- a database migrated by a newer threadstore -------------------------------------------------

UNKNOWN_REVISION = "ffffffffffff"


def _stamp_unknown_revision(engine: Engine) -> None:
    """Pretend a newer threadstore migrated the database."""
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = :v"), {"v": UNKNOWN_REVISION})


def test_sqlite_store_on_database_from_newer_threadstore_asks_to_upgrade_threadstore(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = create_engine(url)
    try:
        _stamp_unknown_revision(engine)
    finally:
        engine.dispose()

    with pytest.raises(SchemaOutOfDateError, match=f"{UNKNOWN_REVISION}.*pip install --upgrade threadstore"):
        Store(url).close()


def test_cli_migrate_on_database_from_newer_threadstore_exits_1_with_message(
    empty_url: URL, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    _stamp_unknown_revision(engine)

    assert cli_main(["migrate", "--url", url_text(empty_url)]) == 1

    assert capsys.readouterr().err.startswith("threadstore: ")
    assert recorded_revisions(engine) == [UNKNOWN_REVISION]


@SKIP_POSTGRES
def test_postgres_store_on_database_from_newer_threadstore_asks_to_upgrade_threadstore(pg_schema: str) -> None:
    url = postgres_url_in_schema(pg_schema)
    engine = create_engine(url)
    try:
        _stamp_unknown_revision(engine)
    finally:
        engine.dispose()
    with Store(url) as store, pytest.raises(SchemaOutOfDateError, match="newer version"):
        store.threads.list()


def _migrate_in_process(url: str) -> None:
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()


@SKIP_POSTGRES
def test_concurrent_first_migrations_of_one_postgres_database_wait_for_each_other(pg_schema: str) -> None:
    url = postgres_url_in_schema(pg_schema).render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_migrate_in_process, args=(url,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    engine = create_engine(url)
    try:
        assert recorded_revisions(engine) == [migrate.head()]
    finally:
        engine.dispose()


# --- an installed wheel, without the checkout -----------------------------------------------------

WHEEL_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import sqlalchemy as sa

    site, head = Path(sys.argv[1]).resolve(), sys.argv[2]

    import threadstore
    from threadstore import Store, migrate
    from threadstore.cli import main

    assert Path(threadstore.__file__).resolve().is_relative_to(site), threadstore.__file__
    location = migrate.script_location().resolve()
    assert location == site / "threadstore" / "_migrations", location
    assert migrate.head() == head, (migrate.head(), head)

    with Store("sqlite:///x.db") as store:
        assert store.threads.list().data == []
        store.threads.create()
        assert len(store.threads.list().data) == 1

    assert main(["migrate", "--url", "sqlite:///y.db"]) == 0
    engine = sa.create_engine("sqlite:///y.db")
    with engine.connect() as connection:
        assert migrate.current(connection) == head
        assert "threadstore_run_step_usages" in sa.inspect(connection).get_table_names()
    print("wheel ok")
    """
)


@pytest.mark.slow
def test_migrations_run_from_installed_wheel_without_checkout(tmp_path: Path) -> None:
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(REPO_ROOT)], cwd=tmp_path)
    (wheel,) = wheels.glob("threadstore-*.whl")
    run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)], cwd=tmp_path)

    result = run(
        [sys.executable, "-c", WHEEL_SCRIPT, str(site), checkout_head()],
        cwd=tmp_path,
        env=subprocess_env(PYTHONPATH=str(site)),
    )

    assert "wheel ok" in result.stdout
    assert (tmp_path / "x.db").is_file()
    assert not (tmp_path / "migrations").exists()


def test_the_head_a_store_checks_on_open_is_the_migrations_head() -> None:
    assert checkout_head() == versions.HEAD
