"""The naive way: a SQLModel Session per call and ORM objects, on the same engine settings."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from threadstore.db import create_engine
from threadstore.ids import new_id
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


def _shape(row: Any) -> dict[str, Any]:
    columns = type(row).__table__.columns
    return {c.name: getattr(row, "metadata_" if c.name == "metadata" else c.name, None) for c in columns}


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
