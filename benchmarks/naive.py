"""The naive way: a SQLModel Session per call and ORM objects, on the same engine settings."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from threadstore.db import create_engine
from threadstore.ids import new_id, new_uuid
from threadstore.langgraph.api import LangGraphRun, LangGraphThread
from threadstore.langgraph.models import ORDER, LangGraphRunRow, LangGraphThreadRow
from threadstore.langgraph.states import BUSY_RUN_STATUSES, THREAD_STATUS_AFTER_RUN
from threadstore.openai.api import Message, Run, RunStep
from threadstore.openai.models import (
    AssistantRow,
    MessageRow,
    RunRow,
    RunStepDetailsRow,
    RunStepRow,
    RunStepUsageRow,
    ThreadRow,
)
from threadstore.openai.states import RUN
from threadstore.ordering import next_in_order


def _shape(row: Any) -> dict[str, Any]:
    columns = type(row).__table__.columns
    return {c.name: getattr(row, f"{c.name}_" if c.name in _RENAMED else c.name, None) for c in columns}


_RENAMED = ("metadata", "kwargs")  # columns whose attribute has a trailing underscore


def _derive_thread_status(session: Session, thread_id: str, now: int) -> None:
    """Set the thread's status from its runs, as an ORM user would: busy, or what the last run left."""
    runs = select(LangGraphRunRow).where(LangGraphRunRow.thread_id == thread_id)
    if session.exec(runs.where(col(LangGraphRunRow.status).in_(BUSY_RUN_STATUSES)).limit(1)).first() is not None:
        status = "busy"
    else:
        newest = (col(LangGraphRunRow.updated_at).desc(), col(LangGraphRunRow.run_id).desc())
        last = session.exec(runs.order_by(*newest).limit(1)).first()
        status = "idle" if last is None else THREAD_STATUS_AFTER_RUN[last.status]
    thread = session.get(LangGraphThreadRow, thread_id)
    assert thread is not None
    if thread.status != status:
        thread.status, thread.updated_at = status, now


def _user_message(thread_id: str, text: str, now: int) -> MessageRow:
    return MessageRow(
        id=new_id("msg"),
        created_at=now,
        thread_id=thread_id,
        status="completed",
        completed_at=now,
        role="user",
        content=[{"type": "text", "text": {"value": text, "annotations": []}}],
        attachments=[],
        metadata_={},
    )


class Naive:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def create_message(self, thread_id: str, text: str, now: int) -> dict[str, Any]:
        with Session(self.engine) as session:
            if session.get(ThreadRow, thread_id) is None:
                raise LookupError(thread_id)
            busy = select(RunRow).where(RunRow.thread_id == thread_id, col(RunRow.status).in_(RUN.active))
            if session.exec(busy).first() is not None:
                raise RuntimeError("thread is busy")
            message = _user_message(thread_id, text, now)
            session.add(message)
            session.commit()
            session.refresh(message)
            return Message.from_row(_shape(message)).to_api()

    def get_run(self, run_id: str) -> dict[str, Any]:
        with Session(self.engine) as session:
            return Run.from_row(_shape(session.get(RunRow, run_id))).to_api()

    def run_lifecycle(self, thread_id: str, assistant_id: str, now: int) -> dict[str, Any]:
        with Session(self.engine) as session:
            session.get(ThreadRow, thread_id)
            assistant = session.get(AssistantRow, assistant_id)
            assert assistant is not None
            run = RunRow(
                id=new_id("run"),
                created_at=now,
                thread_id=thread_id,
                assistant_id=assistant_id,
                status="queued",
                expires_at=now + 600,
                model=assistant.model,
                instructions=assistant.instructions or "",
                tools=assistant.tools,
                metadata_={},
                truncation_strategy={"type": "auto", "last_messages": None},
                response_format="auto",
                tool_choice="auto",
                parallel_tool_calls=True,
            )
            session.add(run)
            session.commit()
            session.refresh(run)
            run_id = run.id
        with Session(self.engine) as session:
            started = session.get(RunRow, run_id)
            assert started is not None
            started.status, started.started_at = "in_progress", started.started_at or now
            session.commit()
        with Session(self.engine) as session:
            done = session.get(RunRow, run_id)
            assert done is not None
            done.status, done.completed_at, done.expires_at = "completed", now, None
            for step in session.exec(
                select(RunStepRow).where(RunStepRow.run_id == run_id, RunStepRow.status == "in_progress")
            ):
                step.status, step.completed_at = "completed", now
            for message in session.exec(
                select(MessageRow).where(MessageRow.run_id == run_id, MessageRow.status == "in_progress")
            ):
                message.status, message.completed_at = "completed", now
            session.commit()
            session.refresh(done)
            return Run.from_row(_shape(done)).to_api()

    def message_page(self, thread_id: str, after: str, limit: int = 20) -> dict[str, Any]:
        with Session(self.engine) as session:
            cursor = session.get(MessageRow, after)
            assert cursor is not None
            key = sa.tuple_(col(MessageRow.created_at), col(MessageRow.id))
            rows = session.exec(
                select(MessageRow)
                .where(MessageRow.thread_id == thread_id, key < sa.tuple_(cursor.created_at, cursor.id))
                .order_by(col(MessageRow.created_at).desc(), col(MessageRow.id).desc())
                .limit(limit + 1)
            ).all()
            data = [Message.from_row(_shape(row)).to_api() for row in rows[:limit]]
            return {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": len(rows) > limit,
            }

    def claim_next(self, now: int) -> dict[str, Any] | None:
        with Session(self.engine) as session:
            query = (
                select(RunRow)
                .where(RunRow.status == "queued", col(RunRow.expires_at) > now)
                .order_by(col(RunRow.created_at), col(RunRow.id))
                .limit(1)
            )
            run = session.exec(query).first()
            if run is None:
                return None
            run.status, run.started_at = "in_progress", run.started_at or now
            session.commit()
            session.refresh(run)
            return Run.from_row(_shape(run)).to_api()

    def step_lifecycle(self, run_id: str, now: int) -> dict[str, Any]:
        with Session(self.engine) as session:
            run = session.get(RunRow, run_id)
            assert run is not None
            details = RunStepDetailsRow(run_id=run_id, type="tool_calls", tool_calls=[])
            session.add(details)
            session.flush()
            step = RunStepRow(
                id=new_id("step"),
                created_at=now,
                run_id=run_id,
                thread_id=run.thread_id,
                assistant_id=run.assistant_id,
                type="tool_calls",
                status="in_progress",
                metadata_={},
                step_details=details.id,
            )
            session.add(step)
            session.commit()
            step_id = step.id
        with Session(self.engine) as session:
            ended = session.get(RunStepRow, step_id)
            assert ended is not None
            ended.status, ended.completed_at = "completed", now
            session.flush()
            usage = RunStepUsageRow(run_id=run_id, prompt_tokens=10, completion_tokens=5, total_tokens=15)
            session.add(usage)
            session.flush()
            ended.usage = usage.id
            session.commit()
            session.refresh(ended)
            details = session.get(RunStepDetailsRow, ended.step_details)
            assert details is not None
            row = {
                **_shape(ended),
                "message_id": None,
                "tool_calls": details.tool_calls,
                "error_code": None,
                "error_message": None,
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
            }
            return RunStep.from_row(row).to_api()

    def import_messages(self, thread_id: str, texts: list[str], now: int) -> list[dict[str, Any]]:
        with Session(self.engine, expire_on_commit=False) as session:  # generous: no reload of 1,000 rows
            rows = [_user_message(thread_id, text, now) for text in texts]
            session.add_all(rows)
            session.commit()
            return [Message.from_row(_shape(row)).to_api() for row in rows]

    def lg_create_thread(self, metadata: dict[str, Any], now: int) -> dict[str, Any]:
        with Session(self.engine) as session:
            thread_id = new_uuid()
            if session.get(LangGraphThreadRow, thread_id) is not None:
                raise RuntimeError("thread exists")
            thread = LangGraphThreadRow(
                thread_id=thread_id, created_at=now, updated_at=now, metadata_=metadata, status="idle", values=None
            )
            session.add(thread)
            session.commit()
            session.refresh(thread)
            return LangGraphThread.from_row(_shape(thread)).to_api()

    def lg_create_run(self, thread_id: str, kwargs: dict[str, Any], now: int) -> dict[str, Any]:
        with Session(self.engine) as session:
            if session.get(LangGraphThreadRow, thread_id) is None:
                raise LookupError(thread_id)
            run = LangGraphRunRow(
                run_id=new_uuid(),
                thread_id=thread_id,
                assistant_id="agent",
                created_at=now,
                updated_at=now,
                status="pending",
                metadata_={},
                kwargs_=kwargs,
                multitask_strategy="enqueue",
                # numbered in the database's order as threadstore numbers its runs: a run left at
                # the column's default 0 would jump every claim's queue, the others' included
                seq=next_in_order(ORDER),
            )
            session.add(run)
            _derive_thread_status(session, thread_id, now)
            session.commit()
            session.refresh(run)
            return LangGraphRun.from_row(_shape(run)).to_api()

    def lg_claim_and_finish(self, now: int) -> dict[str, Any]:
        running = sa.alias(LangGraphRunRow.__table__, "running")  # type: ignore[attr-defined]
        free = ~sa.exists().where(running.c.thread_id == LangGraphRunRow.thread_id, running.c.status == "running")
        with Session(self.engine) as session:
            query = (
                select(LangGraphRunRow)
                .where(LangGraphRunRow.status == "pending", free)
                .order_by(col(LangGraphRunRow.created_at), col(LangGraphRunRow.run_id))
                .limit(1)
            )
            claimed = session.exec(query).first()
            assert claimed is not None, "no pending run left to claim"
            claimed.status, claimed.attempt, claimed.updated_at = "running", claimed.attempt + 1, now
            claimed.lease_expires_at = now + 300_000_000
            session.commit()
            session.refresh(claimed)
            run_id, attempt = claimed.run_id, claimed.attempt
        with Session(self.engine) as session:
            run = session.get(LangGraphRunRow, run_id)
            assert run is not None and run.status == "running" and run.attempt == attempt
            run.status, run.lease_expires_at, run.updated_at = "success", None, now
            session.flush()
            _derive_thread_status(session, run.thread_id, now)
            session.commit()
            session.refresh(run)
            return LangGraphRun.from_row(_shape(run)).to_api()

    def lg_heartbeat(self, run_id: str, attempt: int, now: int) -> dict[str, Any]:
        with Session(self.engine) as session:
            run = session.get(LangGraphRunRow, run_id)
            assert run is not None and run.status == "running" and run.attempt == attempt
            run.lease_expires_at, run.updated_at = now + 300_000_000, now
            session.commit()
            session.refresh(run)
            return LangGraphRun.from_row(_shape(run)).to_api()

    def lg_get_run(self, run_id: str) -> dict[str, Any]:
        with Session(self.engine) as session:
            return LangGraphRun.from_row(_shape(session.get(LangGraphRunRow, run_id))).to_api()

    def lg_search_threads(self, key: str, value: str, limit: int = 10) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            query = (
                select(LangGraphThreadRow)
                .where(col(LangGraphThreadRow.metadata_)[key].as_string() == value)
                .order_by(col(LangGraphThreadRow.created_at).desc(), col(LangGraphThreadRow.thread_id).desc())
                .limit(limit)
            )
            return [LangGraphThread.from_row(_shape(row)).to_api() for row in session.exec(query)]

    def lg_list_runs(self, thread_id: str, limit: int = 10) -> list[dict[str, Any]]:
        with Session(self.engine) as session:
            if session.get(LangGraphThreadRow, thread_id) is None:
                raise LookupError(thread_id)
            query = (
                select(LangGraphRunRow)
                .where(LangGraphRunRow.thread_id == thread_id)
                .order_by(col(LangGraphRunRow.created_at).desc(), col(LangGraphRunRow.run_id).desc())
                .limit(limit)
            )
            return [LangGraphRun.from_row(_shape(row)).to_api() for row in session.exec(query)]
