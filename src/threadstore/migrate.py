"""Alembic, configured in code: the migrations ship inside the wheel, so no checkout or ini is needed."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import URL, Connection, Engine

from threadstore.db import unit_of_work
from threadstore.errors import SchemaOutOfDateError, StorageError

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
def head() -> str:
    """The newest revision this version of threadstore knows."""
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def is_known(revision: str | None) -> bool:
    """Whether this version of threadstore knows `revision` (None, never migrated, is known)."""
    if revision is None:
        return True
    try:
        return ScriptDirectory.from_config(config()).get_revision(revision) is not None
    except CommandError:
        return False


def newer_schema_error(revision: str) -> SchemaOutOfDateError:
    """The error for a database migrated by a newer threadstore than this one."""
    return SchemaOutOfDateError(
        f"The database schema is at revision {revision}, which this threadstore (newest revision "
        f"{head()}) does not know: it was migrated by a newer version. Upgrade threadstore: "
        "pip install --upgrade threadstore"
    )


def _locked_current(connection: Connection) -> str | None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})")
    found = current(connection)
    if not is_known(found):
        assert found is not None
        raise newer_schema_error(found)
    return found


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision` in one transaction: wholly old or wholly new on failure.
    Concurrent upgrades of one database wait for each other.

    Raises:
        SchemaOutOfDateError: the database was migrated by a newer threadstore.
        StorageError: a migration failed (nothing was changed).
    """
    with unit_of_work(engine, write=True) as connection:
        _locked_current(connection)
        command.upgrade(config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the database to `revision` in one transaction.

    Raises:
        SchemaOutOfDateError: the database was migrated by a newer threadstore.
        StorageError: a migration failed (nothing was changed).
    """
    with unit_of_work(engine, write=True) as connection:
        _locked_current(connection)
        command.downgrade(config(connection), revision)


def fix_command(url: URL) -> str:
    """The shell command that brings the database at `url` up to date (password hidden)."""
    return f"threadstore migrate --url '{url.render_as_string(hide_password=True)}'"
