"""A LangGraph thread's status, derived from its runs in the transaction that changes them."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from threadstore.langgraph.models import runs, threads
from threadstore.langgraph.states import BUSY_RUN_STATUSES, THREAD_STATUS_AFTER_RUN


def derived_status(connection: Connection, thread_id: str) -> str:
    """busy while a run is pending or running; else what the run that ended last left; else idle."""
    busy = connection.execute(
        sa.select(runs.c.run_id).where(runs.c.thread_id == thread_id, runs.c.status.in_(BUSY_RUN_STATUSES)).limit(1)
    ).first()
    if busy is not None:
        return "busy"
    last = connection.execute(
        sa.select(runs.c.status)
        .where(runs.c.thread_id == thread_id)
        .order_by(runs.c.updated_at.desc(), runs.c.run_id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return "idle" if last is None else THREAD_STATUS_AFTER_RUN[last]


def refresh(connection: Connection, thread_ids: Iterable[str], now: int) -> None:
    """Write the derived status of each thread, moving `updated_at` when it changes."""
    for thread_id in sorted(set(thread_ids)):
        status = derived_status(connection, thread_id)
        connection.execute(
            sa.update(threads)
            .where(threads.c.thread_id == thread_id, threads.c.status != status)
            .values(status=status, updated_at=now)
        )
