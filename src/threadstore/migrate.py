"""Alembic, configured in code: the migrations ship inside the wheel, so no checkout or ini is needed."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, Engine

from threadstore.db import unit_of_work
from threadstore.errors import StorageError

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


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision` in one transaction: wholly old or wholly new on failure."""
    with unit_of_work(engine, write=True) as connection:
        command.upgrade(config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Downgrade the database to `revision` in one transaction."""
    with unit_of_work(engine, write=True) as connection:
        command.downgrade(config(connection), revision)


def fix_command(url: URL) -> str:
    """The shell command that brings the database at `url` up to date (password hidden)."""
    return f"threadstore migrate --url '{url.render_as_string(hide_password=True)}'"
