"""LangGraph threads and runs: their tables, the one-running-run-per-thread index and the
lease columns that claims need.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSON on SQLite, JSONB on PostgreSQL; None is SQL NULL.
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "langgraph_threads",
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("values", JSON, nullable=True),
        sa.CheckConstraint(
            "status IN ('busy', 'error', 'idle', 'interrupted')", name=op.f("ck_langgraph_threads_status")
        ),
        sa.PrimaryKeyConstraint("thread_id", name=op.f("pk_langgraph_threads")),
    )
    op.create_index(
        op.f("ix_langgraph_threads_created_at"), "langgraph_threads", ["created_at", "thread_id"], unique=False
    )
    op.create_index(op.f("ix_langgraph_threads_status"), "langgraph_threads", ["status", "created_at"], unique=False)
    op.create_table(
        "langgraph_runs",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("assistant_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("kwargs", JSON, nullable=False),
        sa.Column("multitask_strategy", sa.String(), nullable=False),
        sa.Column("cancel_reason", sa.String(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("lease_expires_at", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "(status IN ('running')) = (lease_expires_at IS NOT NULL)",
            name=op.f("ck_langgraph_runs_lease_expires_at_by_status"),
        ),
        sa.CheckConstraint(
            "multitask_strategy IN ('enqueue', 'interrupt', 'reject', 'rollback')",
            name=op.f("ck_langgraph_runs_multitask_strategy"),
        ),
        sa.CheckConstraint(
            "status IN ('error', 'interrupted', 'pending', 'running', 'success', 'timeout')",
            name=op.f("ck_langgraph_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["langgraph_threads.thread_id"],
            name=op.f("fk_langgraph_runs_thread_id_langgraph_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_langgraph_runs")),
    )
    op.create_index(op.f("ix_langgraph_runs_status"), "langgraph_runs", ["status", "created_at"], unique=False)
    op.create_index(op.f("ix_langgraph_runs_thread_id"), "langgraph_runs", ["thread_id", "created_at"], unique=False)
    op.create_index(
        "uq_langgraph_runs_one_running_per_thread",
        "langgraph_runs",
        ["thread_id"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_langgraph_runs_one_running_per_thread",
        table_name="langgraph_runs",
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.drop_index(op.f("ix_langgraph_runs_thread_id"), table_name="langgraph_runs")
    op.drop_index(op.f("ix_langgraph_runs_status"), table_name="langgraph_runs")
    op.drop_table("langgraph_runs")
    op.drop_index(op.f("ix_langgraph_threads_status"), table_name="langgraph_threads")
    op.drop_index(op.f("ix_langgraph_threads_created_at"), table_name="langgraph_threads")
    op.drop_table("langgraph_threads")
