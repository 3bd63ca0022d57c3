"""The index of messages by run holds only messages that have a run: user messages, most of any
thread, no longer pay for an index entry on every insert.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_messages_run_id"
COLUMNS = ["run_id", "created_at", "id"]
HAS_RUN = sa.text("run_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index(INDEX, table_name="messages")
    op.create_index(INDEX, "messages", COLUMNS, unique=False, sqlite_where=HAS_RUN, postgresql_where=HAS_RUN)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="messages")
    op.create_index(INDEX, "messages", COLUMNS, unique=False)
