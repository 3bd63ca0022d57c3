"""Every table of threadstore's takes the prefix `threadstore_` (`threads` becomes
`threadstore_threads`), and so do its indexes after their kind (`ix_runs_status` becomes
`ix_threadstore_runs_status`) and, on PostgreSQL, its primary keys (`pk_threads` becomes
`pk_threadstore_threads`, the name of its index too) and sequences (`events_id_seq` becomes
`threadstore_events_id_seq`), so that an application's own `threads` or `messages` can share the
database. The other constraints' names stay as they are.

Tables are renamed in place, every row kept: foreign keys, an application's included, follow the
rename (SQLite rewrites their text, PostgreSQL refers to tables by oid). The indexes and sequences
are read from the database rather than listed here, so whatever index set a database has is
renamed; an index whose name does not follow threadstore's form (`<kind>_<table>_...`), such as
one an application put on a threadstore table, keeps its name. SQLite renames no index: each is
made again under its new name from the SQL it was made with.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = "threadstore_"
# threadstore's tables before this revision. A list, not the models' tables: a table a later
# revision adds is born with the prefix, and a table of the application's named like it must
# never be renamed here.
TABLES = (
    "assistants",
    "threads",
    "runs",
    "messages",
    "run_steps",
    "run_step_details",
    "run_step_last_errors",
    "run_step_usages",
    "langgraph_threads",
    "langgraph_thread_metadata",
    "langgraph_runs",
    "events",
    "conversations",
    "conversation_items",
    "responses",
    "response_items",
)
INDEX_KINDS = ("ix", "uq")


def upgrade() -> None:
    for table in TABLES:
        _rename(table, PREFIX + table)


def downgrade() -> None:
    for table in TABLES:
        _rename(PREFIX + table, table)


def _rename(old: str, new: str) -> None:
    bind = op.get_bind()
    indexes = [
        index["name"]
        for index in sa.inspect(bind).get_indexes(old)
        if index["name"] is not None and not index.get("duplicates_constraint")
    ]
    op.rename_table(old, new)
    for name in indexes:
        renamed = _index_name(name, old, new)
        if renamed is None:
            continue
        if bind.dialect.name == "sqlite":
            _make_index_again(name, renamed)
        else:
            op.execute(f"ALTER INDEX {name} RENAME TO {renamed}")
    if bind.dialect.name == "postgresql":
        _rename_primary_key(old, new)
        _rename_sequences(old, new)


def _index_name(name: str, old: str, new: str) -> str | None:
    """The name of the index `name` of table `old` once the table is `new` (None: not one of
    threadstore's names, kept as it is)."""
    for kind in INDEX_KINDS:
        if name.startswith(f"{kind}_{old}_"):
            return f"{kind}_{new}_{name.removeprefix(f'{kind}_{old}_')}"
    return None


def _make_index_again(name: str, renamed: str) -> None:
    # SQLite has no ALTER INDEX; its CREATE INDEX text, which names the renamed table by now, is
    # kept as written, so only the name changes (the columns, UNIQUE and WHERE are kept).
    sql = op.get_bind().exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,))
    created = sql.scalar_one()
    head, found, tail = created.partition(f" {name} ON ")
    assert found, f"index {name} was not made by CREATE INDEX {name} ON ...: {created}"
    op.execute(f"DROP INDEX {name}")
    op.execute(f"{head} {renamed} ON {tail}")


def _rename_primary_key(old: str, new: str) -> None:
    # PostgreSQL names a primary key's index after it, among the tables. SQLite keeps the name in
    # the table's text only, where it can change only with the whole table, and nothing reads it.
    name = sa.inspect(op.get_bind()).get_pk_constraint(new)["name"]
    if name == f"pk_{old}":
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT {name} TO pk_{new}")


def _rename_sequences(old: str, new: str) -> None:
    # A serial column's sequence (`<table>_<column>_seq`) and the ones threadstore names itself
    # (`<table>_<column>`, ordering.sequence_name) are named after the table; in the migrated
    # schema only (current_schema(), the search path's first).
    bind = op.get_bind()
    columns = [column["name"] for column in sa.inspect(bind).get_columns(new)]
    sequences = set(
        bind.exec_driver_sql(
            "SELECT relname FROM pg_class WHERE relkind = 'S'"
            " AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
        ).scalars()
    )
    for column in columns:
        for suffix in (f"_{column}_seq", f"_{column}"):
            if old + suffix in sequences:
                op.execute(f"ALTER SEQUENCE {old}{suffix} RENAME TO {new}{suffix}")
