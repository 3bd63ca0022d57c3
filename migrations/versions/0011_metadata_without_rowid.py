"""On SQLite, the LangGraph thread metadata index (`threadstore_langgraph_thread_metadata`) is a
WITHOUT ROWID table: its rows live in its primary key's B-tree, so that each entry a thread
create writes goes to two B-trees (the key and the index on key, value and creation time)
instead of three (a rowid table beside both), and dirties one page fewer in each commit.

SQLite cannot change a table's kind in place: the table is made again from its own CREATE TABLE
text (its columns, keys and names as they are, WITHOUT ROWID added or removed), every row copied
into it, and every index and trigger on it made again from its text, an application's too.
PostgreSQL has no rowid: its table is the same at both revisions.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "threadstore_langgraph_thread_metadata"
NEW = f"{TABLE}_0011"  # the new table's name while both exist
WITHOUT_ROWID = " WITHOUT ROWID"


def upgrade() -> None:
    _make_again(without_rowid=True)


def downgrade() -> None:
    _make_again(without_rowid=False)


def _make_again(*, without_rowid: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    created = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).scalar_one()
    on_it = (
        bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND tbl_name = ? AND sql IS NOT NULL",
            (TABLE,),
        )
        .scalars()
        .all()
    )
    _, found, body = created.partition("(")  # CREATE TABLE "name" (columns and constraints) [WITHOUT ROWID]
    assert found, f"{TABLE} was not made by CREATE TABLE {TABLE} (...): {created}"
    body = body.removesuffix(WITHOUT_ROWID)
    op.execute(f"CREATE TABLE {NEW} ({body}{WITHOUT_ROWID if without_rowid else ''}")
    op.execute(f"INSERT INTO {NEW} SELECT * FROM {TABLE}")  # the same text: the same columns, in order
    op.execute(f"DROP TABLE {TABLE}")
    op.execute(f"ALTER TABLE {NEW} RENAME TO {TABLE}")
    for sql in on_it:  # their text names the table, which has its name again
        op.execute(sql)
