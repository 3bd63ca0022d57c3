"""Events are indexed by thread only: a run's events are read through its thread's index, which
carries `run_id`, so the run needs no index of its own. One index fewer makes every unit of work
that writes events cheaper (one page fewer in each commit).

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_events_run_id"), table_name="events")
    op.drop_index(op.f("ix_events_thread_id"), table_name="events")
    op.create_index(op.f("ix_events_thread_id"), "events", ["thread_id", "id", "run_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_events_thread_id"), table_name="events")
    op.create_index(op.f("ix_events_thread_id"), "events", ["thread_id", "id"], unique=False)
    op.create_index(op.f("ix_events_run_id"), "events", ["run_id", "id"], unique=False)
