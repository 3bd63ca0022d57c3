"""Alembic, configured in code: the migrations ship inside the wheel, so no checkout or ini is needed.

Importing this module imports Alembic; the store imports it only when a schema is behind (see
versions.py for the cheap check that comes first).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL, Connection, Engine

from threadstore.alembic import built_on, include_threadstore_name
from threadstore.db import unit_of_work
from threadstore.errors import SchemaOutOfDateError, StorageError, ValidationError
from threadstore.tables import metadata
from threadstore.versions import VERSION_TABLE, recorded

# Serializes migrations of one PostgreSQL database: a transaction-scoped advisory lock.
_ADVISORY_LOCK_KEY = 0x7468726473  # "thrds"

_PACKAGED = Path(__file__).parent / "_migrations"
_CHECKOUT = Path(__file__).resolve().parents[2] / "migrations"


def script_location() -> Path:
    """The migrations directory: inside the installed package, or the checkout's `migrations/`.

    Raises:
        StorageError: neither exists (a broken installation).
    """
    for candidate in (_PACKAGED, _CHECKOUT):
        if (candidate / "env.py").is_file():
            return candidate
    raise StorageError("threadstore's migrations are missing from this installation.")


def config(connection: Connection | None = None) -> Config:
    """An Alembic config for threadstore's migrations, bound to `connection` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


@cache
def head() -> str:
    """The newest revision this version of threadstore knows."""
    revision = _scripts().get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    """The revision the database is at, or None if threadstore never migrated it."""
    return recorded(connection)


def is_known(revision: str | None) -> bool:
    """Whether this version of threadstore knows `revision` (None, never migrated, is known)."""
    if revision is None:
        return True
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def newer_schema_error(revision: str) -> SchemaOutOfDateError:
    """The error for a database migrated by a newer threadstore than this one."""
    return SchemaOutOfDateError(
        f"The database schema is at revision {revision}, which this threadstore (newest revision "
        f"{head()}) does not know: it was migrated by a newer version. Upgrade threadstore: "
        "pip install --upgrade threadstore"
    )


def _create_schema(connection: Connection, schema: str | None) -> None:
    if schema is not None and connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # checked by db.in_schema


@contextmanager
def _locked(engine: Engine, schema: str | None = None) -> Iterator[Connection]:
    """One write transaction holding the migration lock (env.py moves a revision threadstore kept
    in the shared `alembic_version` to its own table; see versions.adopt_shared_version).

    Raises:
        SchemaOutOfDateError: the database was migrated by a newer threadstore.
    """
    with unit_of_work(engine, write=True) as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})")
        _create_schema(connection, schema)
        found = current(connection)
        if not is_known(found):
            assert found is not None
            raise newer_schema_error(found)
        yield connection


@contextmanager
def _alembic_errors() -> Iterator[None]:
    try:
        yield
    except CommandError as error:
        raise ValidationError(f"Alembic refused: {error}") from error


def upgrade(engine: Engine, revision: str = "head", *, schema: str | None = None) -> None:
    """Upgrade the database to `revision` in one transaction: wholly old or wholly new on failure.
    Concurrent upgrades of one database wait for each other.

    Args:
        engine: threadstore's engine on the database.
        revision: the revision to reach; the newest by default.
        schema: the PostgreSQL schema the engine's search_path names, created if missing.

    Raises:
        SchemaOutOfDateError: the database was migrated by a newer threadstore.
        ValidationError: `revision` is not one of threadstore's.
        StorageError: a migration failed (nothing was changed).
    """
    with _locked(engine, schema) as connection, _alembic_errors():
        command.upgrade(config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the database to `revision` in one transaction.

    Raises:
        SchemaOutOfDateError: the database was migrated by a newer threadstore.
        ValidationError: `revision` is not one of threadstore's.
        StorageError: a migration failed (nothing was changed).
    """
    with _locked(engine) as connection, _alembic_errors():
        command.downgrade(config(connection), revision)


def stamp(engine: Engine, revision: str, *, schema: str | None = None) -> None:
    """Record `revision` as the database's without running any migration.

    Raises:
        ValidationError: `revision` is not one of threadstore's.
    """
    with unit_of_work(engine, write=True) as connection, _alembic_errors():
        _create_schema(connection, schema)
        command.stamp(config(connection), revision, purge=True)


def check(engine: Engine) -> list[str]:
    """What the database lacks for threadstore's models, one line each ([] when they agree): its
    revision if behind, then every difference Alembic's autogenerate finds in threadstore's tables.

    Raises:
        SchemaOutOfDateError: the database was migrated by a newer threadstore.
    """
    with unit_of_work(engine, write=False) as connection:
        found = current(connection)
        if not is_known(found):
            assert found is not None
            raise newer_schema_error(found)
        behind = [] if found == head() else [f"the database is at revision {found or 'none'}, not {head()}"]
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "version_table": VERSION_TABLE,
                "include_name": include_threadstore_name,
                "include_object": built_on(connection.dialect.name),
            },
        )
        return behind + [repr(difference) for difference in compare_metadata(context, metadata)]


def history() -> list[str]:
    """threadstore's revisions, newest first, one each: `0002 -> 0003 (head), what it does`."""
    return [
        " ".join(script.cmd_format(False, include_branches=True, include_doc=True, include_parents=True).split())
        for script in _scripts().walk_revisions()
    ]


def fix_command(url: URL, schema: str | None = None) -> str:
    """The shell command that brings the database at `url` up to date (password hidden)."""
    command = f"threadstore migrate --url '{url.render_as_string(hide_password=True)}'"
    return command if schema is None else f"{command} --schema {schema}"
