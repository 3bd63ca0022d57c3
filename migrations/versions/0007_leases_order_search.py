"""OpenAI runs take leased claims: `runs.attempt` counts a run's claims and `runs.lease_expires_at`
(Unix microseconds) holds a leased claim's end, only while a worker holds the run.

LangGraph runs are ordered by the database, not the clock: `langgraph_runs.seq` numbers a run
when it is created and again when it ends (a sequence on PostgreSQL). Existing runs are numbered
in the order the clock gave them: live runs by creation, ended ones by their last change.

Thread search by metadata is indexed: the table `langgraph_thread_metadata` of each thread's
scalar metadata entries, filled here from the existing threads by the store's own rule
(threadstore.langgraph.metadata_index.entries), and on PostgreSQL a GIN index (jsonb_path_ops).

Revision ID: 0007
Revises: 0008
Create Date: 2026-12-07
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from threadstore.langgraph.metadata_index import entries

revision: str = "0007"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEASE_CHECK = "ck_runs_lease_expires_at_by_status"
LEASE_HELD = "lease_expires_at IS NULL OR status IN ('cancelling', 'in_progress')"


ORDER_SEQUENCE = "langgraph_runs_seq"
NUMBERS = "_ts_0007_numbers"
LIVE = "status IN ('pending', 'running')"


INDEXED = "langgraph_thread_metadata"
GIN = "ix_langgraph_threads_metadata"
BATCH = 10_000


def upgrade() -> None:
    _upgrade_leases()
    _upgrade_order()
    _upgrade_search()


def downgrade() -> None:
    _downgrade_search()
    _downgrade_order()
    _downgrade_leases()


def _upgrade_search() -> None:
    op.create_table(
        INDEXED,
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["langgraph_threads.thread_id"],
            name=op.f(f"fk_{INDEXED}_thread_id_langgraph_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("thread_id", "key", name=op.f(f"pk_{INDEXED}")),
    )
    op.create_index(op.f(f"ix_{INDEXED}_key"), INDEXED, ["key", "value", "created_at", "thread_id"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.create_index(
            GIN,
            "langgraph_threads",
            ["metadata"],
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        )
    indexed = sa.table(INDEXED, *(sa.column(name) for name in ("thread_id", "key", "value", "created_at")))
    threads = bind.execute(sa.text("SELECT thread_id, created_at, metadata FROM langgraph_threads"))
    while batch := threads.fetchmany(BATCH):
        rows = [
            {"thread_id": thread_id, "key": key, "value": value, "created_at": created_at}
            for thread_id, created_at, metadata in batch
            for key, value in entries(json.loads(metadata) if isinstance(metadata, str) else metadata)
        ]
        if rows:
            bind.execute(indexed.insert(), rows)


def _downgrade_search() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index(GIN, table_name="langgraph_threads")
    op.drop_index(op.f(f"ix_{INDEXED}_key"), table_name=INDEXED)
    op.drop_table(INDEXED)


def _upgrade_order() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        op.execute(f"CREATE SEQUENCE {ORDER_SEQUENCE}")
    op.add_column("langgraph_runs", sa.Column("seq", sa.BigInteger(), nullable=False, server_default=sa.text("0")))
    op.create_table(
        NUMBERS,
        sa.Column("run_id", sa.String(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.execute(
        f"INSERT INTO {NUMBERS} (run_id, seq) SELECT run_id, row_number() OVER"
        f" (ORDER BY CASE WHEN {LIVE} THEN created_at ELSE updated_at END, run_id) FROM langgraph_runs"
    )
    op.execute(f"UPDATE langgraph_runs SET seq = (SELECT seq FROM {NUMBERS} n WHERE n.run_id = langgraph_runs.run_id)")
    op.drop_table(NUMBERS)
    if postgresql:
        op.execute(f"SELECT setval('{ORDER_SEQUENCE}', coalesce(max(seq), 0) + 1, false) FROM langgraph_runs")
    op.drop_index(op.f("ix_langgraph_runs_status"), table_name="langgraph_runs")
    op.create_index(op.f("ix_langgraph_runs_status"), "langgraph_runs", ["status", "seq"], unique=False)
    op.create_index(op.f("ix_langgraph_runs_seq"), "langgraph_runs", ["seq"], unique=False)


def _downgrade_order() -> None:
    op.drop_index(op.f("ix_langgraph_runs_seq"), table_name="langgraph_runs")
    op.drop_index(op.f("ix_langgraph_runs_status"), table_name="langgraph_runs")
    op.create_index(op.f("ix_langgraph_runs_status"), "langgraph_runs", ["status", "created_at"], unique=False)
    op.execute("ALTER TABLE langgraph_runs DROP COLUMN seq")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SEQUENCE {ORDER_SEQUENCE}")


def _upgrade_leases() -> None:
    op.add_column("runs", sa.Column("attempt", sa.Integer(), nullable=False, server_default=sa.text("0")))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a CHECK only with its column; rebuilding `runs` instead would fire the
        # foreign keys' ON DELETE actions of its steps and messages when the old table is dropped.
        op.execute(f"ALTER TABLE runs ADD COLUMN lease_expires_at BIGINT CONSTRAINT {LEASE_CHECK} CHECK ({LEASE_HELD})")
    else:
        op.add_column("runs", sa.Column("lease_expires_at", sa.BigInteger(), nullable=True))
        op.create_check_constraint(op.f(LEASE_CHECK), "runs", LEASE_HELD)


def _downgrade_leases() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(LEASE_CHECK), "runs", type_="check")
    op.execute("ALTER TABLE runs DROP COLUMN lease_expires_at")
    op.execute("ALTER TABLE runs DROP COLUMN attempt")
