"""Runs keep the create-run request's `reasoning_effort` (one of the API's values) and `include`
(the run step fields to include); both null on runs created before.

SQLite adds the column with its CHECK in one ALTER TABLE: a batch copy of `runs` would drop the
old table, and with foreign keys on that deletes every run's steps and messages' links.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
CHECK = "ck_runs_reasoning_effort"
CONDITION = "reasoning_effort IN ({})".format(", ".join(f"'{value}'" for value in sorted(REASONING_EFFORTS)))
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"ALTER TABLE runs ADD COLUMN reasoning_effort VARCHAR CONSTRAINT {CHECK} CHECK ({CONDITION})")
    else:
        op.add_column("runs", sa.Column("reasoning_effort", sa.String(), nullable=True))
        op.create_check_constraint(op.f(CHECK), "runs", CONDITION)
    op.add_column("runs", sa.Column("include", JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("runs", "include")
    if op.get_bind().dialect.name != "sqlite":  # SQLite drops a column's own CHECK with it
        op.drop_constraint(op.f(CHECK), "runs", type_="check")
    op.drop_column("runs", "reasoning_effort")
