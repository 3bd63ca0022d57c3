"""The initial schema: assistants, threads, messages, runs, run steps and the step's details,
last error and usage tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSON on SQLite, JSONB on PostgreSQL; None is SQL NULL.
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "assistants",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("description", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("instructions", sa.String(), nullable=True),
        sa.Column("tools", JSON, nullable=False),
        sa.Column("tool_resources", JSON, nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("top_p", sa.Float(), nullable=True),
        sa.Column("response_format", JSON, nullable=True),
        sa.Column("deleted_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistants")),
    )
    op.create_index(op.f("ix_assistants_created_at"), "assistants", ["created_at", "id"], unique=False)
    op.create_table(
        "threads",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("tool_resources", JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threads")),
    )
    op.create_index(op.f("ix_threads_created_at"), "threads", ["created_at", "id"], unique=False)
    op.create_table(
        "runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("assistant_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("required_action", JSON, nullable=True),
        sa.Column("last_error_code", sa.String(), nullable=True),
        sa.Column("last_error_message", sa.String(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_at", sa.BigInteger(), nullable=True),
        sa.Column("failed_at", sa.BigInteger(), nullable=True),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("incomplete_reason", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("instructions", sa.String(), nullable=False),
        sa.Column("tools", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("usage_prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("usage_completion_tokens", sa.Integer(), nullable=True),
        sa.Column("usage_total_tokens", sa.Integer(), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("top_p", sa.Float(), nullable=True),
        sa.Column("max_prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("max_completion_tokens", sa.Integer(), nullable=True),
        sa.Column("truncation_strategy", JSON, nullable=False),
        sa.Column("response_format", JSON, nullable=False),
        sa.Column("tool_choice", JSON, nullable=False),
        sa.Column("parallel_tool_calls", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "(status IN ('failed')) = (last_error_code IS NOT NULL)", name=op.f("ck_runs_last_error_code_by_status")
        ),
        sa.CheckConstraint(
            "(status IN ('requires_action')) = (required_action IS NOT NULL)",
            name=op.f("ck_runs_required_action_by_status"),
        ),
        sa.CheckConstraint(
            "expires_at IS NULL OR status IN ('cancelling', 'expired', 'in_progress', 'queued', 'requires_action')",
            name=op.f("ck_runs_expires_at_by_status"),
        ),
        sa.CheckConstraint(
            "incomplete_reason IN ('max_completion_tokens', 'max_prompt_tokens')",
            name=op.f("ck_runs_incomplete_reason"),
        ),
        sa.CheckConstraint(
            "incomplete_reason IS NULL OR status IN ('incomplete')", name=op.f("ck_runs_incomplete_reason_by_status")
        ),
        sa.CheckConstraint(
            "last_error_code IN ('invalid_prompt', 'rate_limit_exceeded', 'server_error')",
            name=op.f("ck_runs_last_error_code"),
        ),
        sa.CheckConstraint(
            "status IN ('cancelled', 'cancelling', 'completed', 'expired', 'failed', 'in_progress', 'incomplete', 'queued', 'requires_action')",
            name=op.f("ck_runs_status"),
        ),
        sa.CheckConstraint(
            "usage_total_tokens IS NULL OR status IN ('cancelled', 'completed', 'expired', 'failed', 'incomplete')",
            name=op.f("ck_runs_usage_total_tokens_by_status"),
        ),
        sa.ForeignKeyConstraint(["assistant_id"], ["assistants.id"], name=op.f("fk_runs_assistant_id_assistants")),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["threads.id"], name=op.f("fk_runs_thread_id_threads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_status"), "runs", ["status", "created_at", "id"], unique=False)
    op.create_index(op.f("ix_runs_thread_id"), "runs", ["thread_id", "created_at", "id"], unique=False)
    op.create_index(
        "uq_runs_one_active_per_thread",
        "runs",
        ["thread_id"],
        unique=True,
        sqlite_where=sa.text("status IN ('cancelling', 'in_progress', 'queued', 'requires_action')"),
        postgresql_where=sa.text("status IN ('cancelling', 'in_progress', 'queued', 'requires_action')"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("incomplete_reason", sa.String(), nullable=True),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("incomplete_at", sa.BigInteger(), nullable=True),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.Column("assistant_id", sa.String(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("attachments", JSON, nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.CheckConstraint(
            "(status IN ('incomplete')) = (incomplete_reason IS NOT NULL)",
            name=op.f("ck_messages_incomplete_reason_by_status"),
        ),
        sa.CheckConstraint(
            "completed_at IS NULL OR status IN ('completed')", name=op.f("ck_messages_completed_at_by_status")
        ),
        sa.CheckConstraint(
            "incomplete_at IS NULL OR status IN ('incomplete')", name=op.f("ck_messages_incomplete_at_by_status")
        ),
        sa.CheckConstraint(
            "incomplete_reason IN ('content_filter', 'max_tokens', 'run_cancelled', 'run_expired', 'run_failed')",
            name=op.f("ck_messages_incomplete_reason"),
        ),
        sa.CheckConstraint("role IN ('assistant', 'user')", name=op.f("ck_messages_role")),
        sa.CheckConstraint("status IN ('completed', 'in_progress', 'incomplete')", name=op.f("ck_messages_status")),
        sa.ForeignKeyConstraint(["assistant_id"], ["assistants.id"], name=op.f("fk_messages_assistant_id_assistants")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_messages_run_id_runs"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["threads.id"], name=op.f("fk_messages_thread_id_threads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(op.f("ix_messages_run_id"), "messages", ["run_id", "created_at", "id"], unique=False)
    op.create_index(op.f("ix_messages_thread_id"), "messages", ["thread_id", "created_at", "id"], unique=False)
    op.create_table(
        "run_steps",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("thread_id", sa.String(), nullable=False),
        sa.Column("assistant_id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("expired_at", sa.BigInteger(), nullable=True),
        sa.Column("cancelled_at", sa.BigInteger(), nullable=True),
        sa.Column("failed_at", sa.BigInteger(), nullable=True),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.CheckConstraint(
            "status IN ('cancelled', 'completed', 'expired', 'failed', 'in_progress')", name=op.f("ck_run_steps_status")
        ),
        sa.CheckConstraint("type IN ('message_creation', 'tool_calls')", name=op.f("ck_run_steps_type")),
        sa.ForeignKeyConstraint(["assistant_id"], ["assistants.id"], name=op.f("fk_run_steps_assistant_id_assistants")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_steps_run_id_runs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["threads.id"], name=op.f("fk_run_steps_thread_id_threads"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_steps")),
    )
    op.create_index(op.f("ix_run_steps_run_id"), "run_steps", ["run_id", "created_at", "id"], unique=False)
    op.create_index(op.f("ix_run_steps_thread_id"), "run_steps", ["thread_id"], unique=False)
    op.create_table(
        "run_step_details",
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=True),
        sa.Column("tool_calls", JSON, nullable=True),
        sa.CheckConstraint(
            "(type = 'message_creation' AND message_id IS NOT NULL AND tool_calls IS NULL) OR (type = 'tool_calls' AND tool_calls IS NOT NULL AND message_id IS NULL)",
            name=op.f("ck_run_step_details_payload_matches_type"),
        ),
        sa.CheckConstraint("type IN ('message_creation', 'tool_calls')", name=op.f("ck_run_step_details_type")),
        sa.ForeignKeyConstraint(
            ["step_id"], ["run_steps.id"], name=op.f("fk_run_step_details_step_id_run_steps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("step_id", name=op.f("pk_run_step_details")),
    )
    op.create_table(
        "run_step_last_errors",
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.CheckConstraint(
            "code IN ('rate_limit_exceeded', 'server_error')", name=op.f("ck_run_step_last_errors_code")
        ),
        sa.ForeignKeyConstraint(
            ["step_id"], ["run_steps.id"], name=op.f("fk_run_step_last_errors_step_id_run_steps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("step_id", name=op.f("pk_run_step_last_errors")),
    )
    op.create_table(
        "run_step_usages",
        sa.Column("step_id", sa.String(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("total_tokens", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["step_id"], ["run_steps.id"], name=op.f("fk_run_step_usages_step_id_run_steps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("step_id", name=op.f("pk_run_step_usages")),
    )


def downgrade() -> None:
    op.drop_table("run_step_usages")
    op.drop_table("run_step_last_errors")
    op.drop_table("run_step_details")
    op.drop_index(op.f("ix_run_steps_thread_id"), table_name="run_steps")
    op.drop_index(op.f("ix_run_steps_run_id"), table_name="run_steps")
    op.drop_table("run_steps")
    op.drop_index(op.f("ix_messages_thread_id"), table_name="messages")
    op.drop_index(op.f("ix_messages_run_id"), table_name="messages")
    op.drop_table("messages")
    op.drop_index(
        "uq_runs_one_active_per_thread",
        table_name="runs",
        sqlite_where=sa.text("status IN ('cancelling', 'in_progress', 'queued', 'requires_action')"),
        postgresql_where=sa.text("status IN ('cancelling', 'in_progress', 'queued', 'requires_action')"),
    )
    op.drop_index(op.f("ix_runs_thread_id"), table_name="runs")
    op.drop_index(op.f("ix_runs_status"), table_name="runs")
    op.drop_table("runs")
    op.drop_index(op.f("ix_threads_created_at"), table_name="threads")
    op.drop_table("threads")
    op.drop_index(op.f("ix_assistants_created_at"), table_name="assistants")
    op.drop_table("assistants")
