"""Responses and Conversations: conversations and their items (ordered by position), responses
and their input and output items, one response in progress per conversation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

ERROR_CODES = (
    "'empty_image_file', 'failed_to_download_image', 'image_content_policy_violation', 'image_file_not_found', "
    "'image_file_too_large', 'image_parse_error', 'image_too_large', 'image_too_small', 'invalid_base64_image', "
    "'invalid_image', 'invalid_image_format', 'invalid_image_mode', 'invalid_image_url', 'invalid_prompt', "
    "'rate_limit_exceeded', 'server_error', 'unsupported_image_media_type', 'vector_store_timeout'"
)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("next_position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_table(
        "conversation_items",
        sa.Column("conversation_id", sa.String(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_items_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "position", name=op.f("pk_conversation_items")),
    )
    op.create_index(
        op.f("ix_conversation_items_conversation_id"), "conversation_items", ["conversation_id", "id"], unique=True
    )
    op.create_table(
        "responses",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("completed_at", sa.BigInteger(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("instructions", sa.String(), nullable=True),
        sa.Column("previous_response_id", sa.String(), nullable=True),
        sa.Column("conversation_id", sa.String(), nullable=True),
        sa.Column("background", sa.Boolean(), nullable=False),
        sa.Column("usage", JSON, nullable=True),
        sa.Column("error_code", sa.String(), nullable=True),
        sa.Column("error_message", sa.String(), nullable=True),
        sa.Column("incomplete_reason", sa.String(), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("tools", JSON, nullable=False),
        sa.Column("tool_choice", JSON, nullable=False),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("top_p", sa.Float(), nullable=True),
        sa.Column("max_output_tokens", sa.Integer(), nullable=True),
        sa.Column("parallel_tool_calls", sa.Boolean(), nullable=False),
        sa.Column("text", JSON, nullable=False),
        sa.Column("reasoning", JSON, nullable=True),
        sa.Column("truncation", sa.String(), nullable=False),
        sa.Column("store", sa.Boolean(), nullable=False),
        sa.Column("user", sa.String(), nullable=True),
        sa.Column("input_count", sa.BigInteger(), nullable=False),
        sa.Column("output_count", sa.BigInteger(), nullable=False),
        sa.Column("context_position", sa.BigInteger(), nullable=True),
        sa.Column("sequence_number", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('cancelled', 'completed', 'failed', 'in_progress', 'incomplete', 'queued')",
            name=op.f("ck_responses_status"),
        ),
        sa.CheckConstraint(f"error_code IN ({ERROR_CODES})", name=op.f("ck_responses_error_code")),
        sa.CheckConstraint(
            "incomplete_reason IN ('content_filter', 'max_output_tokens')", name=op.f("ck_responses_incomplete_reason")
        ),
        sa.CheckConstraint("truncation IN ('auto', 'disabled')", name=op.f("ck_responses_truncation")),
        sa.CheckConstraint(
            "(status IN ('failed')) = (error_code IS NOT NULL)", name=op.f("ck_responses_error_code_by_status")
        ),
        sa.CheckConstraint(
            "(status IN ('incomplete')) = (incomplete_reason IS NOT NULL)",
            name=op.f("ck_responses_incomplete_reason_by_status"),
        ),
        sa.CheckConstraint(
            "usage IS NULL OR status IN ('cancelled', 'completed', 'failed', 'incomplete')",
            name=op.f("ck_responses_usage_by_status"),
        ),
        sa.CheckConstraint(
            "completed_at IS NULL OR status IN ('completed')", name=op.f("ck_responses_completed_at_by_status")
        ),
        sa.ForeignKeyConstraint(
            ["previous_response_id"],
            ["responses.id"],
            name=op.f("fk_responses_previous_response_id_responses"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_responses_conversation_id_conversations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_responses")),
    )
    op.create_index(op.f("ix_responses_status"), "responses", ["status", "created_at", "id"], unique=False)
    op.create_index(op.f("ix_responses_previous_response_id"), "responses", ["previous_response_id"], unique=False)
    op.create_index(op.f("ix_responses_conversation_id"), "responses", ["conversation_id"], unique=False)
    op.create_index(
        "uq_responses_one_in_progress_per_conversation",
        "responses",
        ["conversation_id"],
        unique=True,
        sqlite_where=sa.text("status = 'in_progress'"),
        postgresql_where=sa.text("status = 'in_progress'"),
    )
    op.create_table(
        "response_items",
        sa.Column("response_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.CheckConstraint("kind IN ('input', 'output')", name=op.f("ck_response_items_kind")),
        sa.ForeignKeyConstraint(
            ["response_id"],
            ["responses.id"],
            name=op.f("fk_response_items_response_id_responses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("response_id", "position", name=op.f("pk_response_items")),
    )
    op.create_index(op.f("ix_response_items_response_id"), "response_items", ["response_id", "id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_response_items_response_id"), table_name="response_items")
    op.drop_table("response_items")
    op.drop_index("uq_responses_one_in_progress_per_conversation", table_name="responses")
    op.drop_index(op.f("ix_responses_conversation_id"), table_name="responses")
    op.drop_index(op.f("ix_responses_previous_response_id"), table_name="responses")
    op.drop_index(op.f("ix_responses_status"), table_name="responses")
    op.drop_table("responses")
    op.drop_index(op.f("ix_conversation_items_conversation_id"), table_name="conversation_items")
    op.drop_table("conversation_items")
    op.drop_table("conversations")
