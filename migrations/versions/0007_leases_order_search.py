"""OpenAI runs take leased claims: `runs.attempt` counts a run's claims and `runs.lease_expires_at`
(Unix microseconds) holds a leased claim's end, only while a worker holds the run.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEASE_CHECK = "ck_runs_lease_expires_at_by_status"
LEASE_HELD = "lease_expires_at IS NULL OR status IN ('cancelling', 'in_progress')"


def upgrade() -> None:
    op.add_column("runs", sa.Column("attempt", sa.Integer(), nullable=False, server_default=sa.text("0")))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a CHECK only with its column; rebuilding `runs` instead would fire the
        # foreign keys' ON DELETE actions of its steps and messages when the old table is dropped.
        op.execute(f"ALTER TABLE runs ADD COLUMN lease_expires_at BIGINT CONSTRAINT {LEASE_CHECK} CHECK ({LEASE_HELD})")
    else:
        op.add_column("runs", sa.Column("lease_expires_at", sa.BigInteger(), nullable=True))
        op.create_check_constraint(op.f(LEASE_CHECK), "runs", LEASE_HELD)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(LEASE_CHECK), "runs", type_="check")
    op.execute("ALTER TABLE runs DROP COLUMN lease_expires_at")
    op.execute("ALTER TABLE runs DROP COLUMN attempt")
