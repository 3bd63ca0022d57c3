"""The LangGraph thread metadata index (`threadstore_langgraph_thread_metadata`) becomes one
B-tree: its primary key is the whole row in the order a search reads it (key, value, creation
time, thread), in place of a key on (thread, key), a second index on (key, value, creation time,
thread) and a foreign key to the thread (whose ON DELETE CASCADE needed the key by thread). A
thread create then writes one index entry a metadata key, not two; threadstore deletes a
thread's rows with the thread.

SQLite cannot change a table's primary key in place: the table is made anew, every row copied
into it, and every other index and trigger on it (an application's) made again from its text.
PostgreSQL changes its constraints in place.

The downgrade first drops the rows whose thread is gone (a thread deleted by plain SQL from
outside, which nothing now deletes with it), as the foreign key it gives back requires.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "threadstore_langgraph_thread_metadata"
THREADS = "threadstore_langgraph_threads"
NEW = f"{TABLE}_0012"  # the new table's name while both exist
PRIMARY_KEY = f"pk_{TABLE}"
FOREIGN_KEY = "fk_langgraph_thread_metadata_thread_id_langgraph_threads"
BY_KEY = f"ix_{TABLE}_key"  # the index of 0007, which the new primary key replaces
ONE_BTREE = ("key", "value", "created_at", "thread_id")
BY_THREAD = ("thread_id", "key")
COLUMNS = 'thread_id VARCHAR NOT NULL, "key" VARCHAR NOT NULL, value VARCHAR NOT NULL, created_at BIGINT NOT NULL'
FOREIGN_KEY_SQL = f"CONSTRAINT {FOREIGN_KEY} FOREIGN KEY(thread_id) REFERENCES {THREADS} (thread_id) ON DELETE CASCADE"
ORPHANS = (
    f"DELETE FROM {TABLE} WHERE NOT EXISTS (SELECT 1 FROM {THREADS} AS thread"
    f" WHERE thread.thread_id = {TABLE}.thread_id AND thread.created_at = {TABLE}.created_at)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _make_again(ONE_BTREE, foreign_key=False, drop_index=BY_KEY)
        return
    op.drop_constraint(FOREIGN_KEY, TABLE, type_="foreignkey")
    op.drop_index(BY_KEY, table_name=TABLE)
    op.drop_constraint(PRIMARY_KEY, TABLE, type_="primary")
    op.create_primary_key(PRIMARY_KEY, TABLE, list(ONE_BTREE))


def downgrade() -> None:
    op.execute(ORPHANS)
    if op.get_bind().dialect.name == "sqlite":
        _make_again(BY_THREAD, foreign_key=True)
    else:
        op.drop_constraint(PRIMARY_KEY, TABLE, type_="primary")
        op.create_primary_key(PRIMARY_KEY, TABLE, list(BY_THREAD))
        op.create_foreign_key(FOREIGN_KEY, TABLE, THREADS, ["thread_id"], ["thread_id"], ondelete="CASCADE")
    op.create_index(BY_KEY, TABLE, list(ONE_BTREE))


def _make_again(primary_key: tuple[str, ...], *, foreign_key: bool, drop_index: str | None = None) -> None:
    """SQLite: the table made anew WITHOUT ROWID with this primary key (and the foreign key or
    not), its rows copied, and the indexes and triggers on it but `drop_index` made again."""
    bind = op.get_bind()
    on_it = bind.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND tbl_name = ? AND sql IS NOT NULL",
        (TABLE,),
    ).all()
    key = ", ".join(f'"{column}"' for column in primary_key)
    constraints = f"CONSTRAINT {PRIMARY_KEY} PRIMARY KEY ({key})" + (f", {FOREIGN_KEY_SQL}" if foreign_key else "")
    op.execute(f"CREATE TABLE {NEW} ({COLUMNS}, {constraints}) WITHOUT ROWID")
    op.execute(
        f'INSERT INTO {NEW} (thread_id, "key", value, created_at) SELECT thread_id, "key", value, created_at FROM {TABLE}'
    )
    op.execute(f"DROP TABLE {TABLE}")
    op.execute(f"ALTER TABLE {NEW} RENAME TO {TABLE}")
    for name, sql in on_it:  # their text names the table, which has its name again
        if name != drop_index:
            op.execute(sql)
