"""Where threadstore records its schema revision, read with one plain query (no Alembic import).

threadstore keeps its revision in a version table of its own, `threadstore_alembic_version`, so
that an application's own Alembic history (in `alembic_version`) and threadstore's never see
each other's revisions. Opening a store compares that row with `HEAD` and imports Alembic only
when the schema is behind.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# The newest revision of migrations/versions; tests/test_migrations.py checks it against the
# script directory, so a new migration that forgets to move it fails there.
HEAD = "0012"  # chained 0006 -> 0008 -> 0007 -> 0009 -> 0010 -> 0011 -> 0012 (revision ids are names, not an order)

VERSION_TABLE = "threadstore_alembic_version"
# Where threadstore kept its revision before it had a table of its own (and where an
# application's Alembic keeps its own).
SHARED_VERSION_TABLE = "alembic_version"


def table_exists(connection: Connection, name: str) -> bool:
    """Whether the table `name` exists where unqualified names resolve (PostgreSQL's search_path)."""
    if connection.dialect.name == "sqlite":
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return connection.exec_driver_sql(query, (name,)).first() is not None
    query = "SELECT to_regclass(%(name)s) IS NOT NULL"
    return bool(connection.exec_driver_sql(query, {"name": name}).scalar())


def revisions_in(connection: Connection, table: str) -> list[str]:
    """The revisions recorded in the version table `table` ([] when it is missing or empty)."""
    if not table_exists(connection, table):
        return []
    return sorted(connection.exec_driver_sql(f"SELECT version_num FROM {table}").scalars())


def recorded(connection: Connection) -> str | None:
    """threadstore's revision of the database, or None if threadstore never migrated it."""
    found = revisions_in(connection, VERSION_TABLE)
    return found[0] if found else None


def adopt_shared_version(connection: Connection, is_ours: Callable[[str], bool]) -> str | None:
    """Move threadstore's revision out of the shared `alembic_version` into threadstore's own table.

    threadstore kept its revision in `alembic_version` before it had a table of its own; an
    application's Alembic keeps its revision there. Only a revision `is_ours` accepts moves; an
    application's stays where it is. Returns the revision moved, if any.
    """
    if table_exists(connection, VERSION_TABLE):
        return None
    ours = [revision for revision in revisions_in(connection, SHARED_VERSION_TABLE) if is_ours(revision)]
    if not ours:
        return None
    # The table as Alembic creates it.
    connection.exec_driver_sql(
        f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL, "
        f"CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
    )
    for revision in ours:
        connection.execute(sa.text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": revision})
        connection.execute(sa.text(f"DELETE FROM {SHARED_VERSION_TABLE} WHERE version_num = :v"), {"v": revision})
    return ours[0]
