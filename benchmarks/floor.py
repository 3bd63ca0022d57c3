"""The floor: raw sqlite3 doing the SQL threadstore does, with the same pragmas and durability,
returning the same API dicts. No validation beyond what the SQL needs."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from threadstore.db import BUSY_TIMEOUT_MS
from threadstore.ids import new_id

ACTIVE = "('cancelling', 'in_progress', 'queued', 'requires_action')"
MESSAGE_COLUMNS = (
    "id, created_at, thread_id, status, incomplete_reason, completed_at, incomplete_at, role, content,"
    " assistant_id, run_id, attachments, metadata"
)


def connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}", "synchronous=NORMAL"):
        connection.execute(f"PRAGMA {pragma}")
    return connection


def message_api(row: tuple[Any, ...]) -> dict[str, Any]:
    (id_, created, thread, status, reason, completed, incomplete, role, content, assistant, run, attachments, meta) = (
        row
    )
    return {
        "id": id_,
        "object": "thread.message",
        "created_at": created,
        "thread_id": thread,
        "status": status,
        "incomplete_details": None if reason is None else {"reason": reason},
        "completed_at": completed,
        "incomplete_at": incomplete,
        "role": role,
        "content": json.loads(content),
        "assistant_id": assistant,
        "run_id": run,
        "attachments": json.loads(attachments),
        "metadata": json.loads(meta),
    }


def run_api(row: sqlite3.Row) -> dict[str, Any]:
    code, total = row["last_error_code"], row["usage_total_tokens"]
    return {
        "id": row["id"],
        "object": "thread.run",
        "created_at": row["created_at"],
        "thread_id": row["thread_id"],
        "assistant_id": row["assistant_id"],
        "status": row["status"],
        "required_action": None if row["required_action"] is None else json.loads(row["required_action"]),
        "last_error": None if code is None else {"code": code, "message": row["last_error_message"]},
        "expires_at": row["expires_at"],
        "started_at": row["started_at"],
        "cancelled_at": row["cancelled_at"],
        "failed_at": row["failed_at"],
        "completed_at": row["completed_at"],
        "incomplete_details": {"reason": row["incomplete_reason"]} if row["status"] == "incomplete" else None,
        "model": row["model"],
        "instructions": row["instructions"],
        "tools": json.loads(row["tools"]),
        "metadata": json.loads(row["metadata"]),
        "usage": None
        if total is None
        else {
            "prompt_tokens": row["usage_prompt_tokens"],
            "completion_tokens": row["usage_completion_tokens"],
            "total_tokens": total,
        },
        "temperature": row["temperature"],
        "top_p": row["top_p"],
        "max_prompt_tokens": row["max_prompt_tokens"],
        "max_completion_tokens": row["max_completion_tokens"],
        "truncation_strategy": json.loads(row["truncation_strategy"]),
        "response_format": json.loads(row["response_format"]),
        "tool_choice": json.loads(row["tool_choice"]),
        "parallel_tool_calls": bool(row["parallel_tool_calls"]),
    }


class Floor:
    """The same work as threadstore's repositories, by hand."""

    def __init__(self, path: str) -> None:
        self.db = connect(path)
        self.db.row_factory = sqlite3.Row

    def create_message(self, thread_id: str, text: str, now: int) -> dict[str, Any]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        if db.execute("SELECT id FROM threads WHERE id = ?", (thread_id,)).fetchone() is None:
            raise LookupError(thread_id)
        if db.execute(f"SELECT id FROM runs WHERE thread_id = ? AND status IN {ACTIVE}", (thread_id,)).fetchone():
            raise RuntimeError("thread is busy")
        content = [{"type": "text", "text": {"value": text, "annotations": []}}]
        row = (
            new_id("msg"),
            now,
            thread_id,
            "completed",
            None,
            now,
            None,
            "user",
            json.dumps(content),
            None,
            None,
            "[]",
            "{}",
        )
        db.execute(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", row)
        db.execute("COMMIT")
        return message_api(row)

    def get_run(self, run_id: str) -> dict[str, Any]:
        db = self.db
        db.execute("BEGIN")
        row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        db.execute("COMMIT")
        return run_api(row)

    def run_lifecycle(self, thread_id: str, assistant: sqlite3.Row, now: int) -> dict[str, Any]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        db.execute("SELECT id FROM threads WHERE id = ?", (thread_id,)).fetchone()
        db.execute(f"SELECT id FROM runs WHERE thread_id = ? AND status IN {ACTIVE}", (thread_id,)).fetchone()
        db.execute("SELECT * FROM assistants WHERE id = ? AND deleted_at IS NULL", (assistant["id"],)).fetchone()
        run_id = new_id("run")
        db.execute(
            "INSERT INTO runs (id, created_at, thread_id, assistant_id, status, expires_at, model, instructions,"
            " tools, metadata, truncation_strategy, response_format, tool_choice, parallel_tool_calls)"
            " VALUES (?,?,?,?,'queued',?,?,?,?,'{}',?,'\"auto\"','\"auto\"',1)",
            (
                run_id,
                now,
                thread_id,
                assistant["id"],
                now + 600,
                assistant["model"],
                assistant["instructions"] or "",
                assistant["tools"],
                '{"type": "auto", "last_messages": null}',
            ),
        )
        run_api(db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone())
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        run_api(
            db.execute(
                "UPDATE runs SET status = 'in_progress', started_at = coalesce(started_at, ?), required_action = NULL"
                " WHERE id = ? AND status IN ('queued') RETURNING *",
                (now, run_id),
            ).fetchone()
        )
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(
            "UPDATE runs SET status = 'completed', completed_at = ?, expires_at = NULL WHERE id = ?"
            " AND status IN ('cancelling', 'in_progress') RETURNING *",
            (now, run_id),
        ).fetchone()
        db.execute(
            "UPDATE run_steps SET status = 'completed', completed_at = ? WHERE run_id = ? AND status = 'in_progress'"
            " RETURNING id",
            (now, run_id),
        ).fetchall()
        db.execute(
            "UPDATE messages SET status = 'completed', completed_at = ?, incomplete_reason = NULL"
            " WHERE run_id = ? AND status = 'in_progress'",
            (now, run_id),
        )
        db.execute("COMMIT")
        return run_api(row)

    def message_page(self, thread_id: str, after: str, limit: int = 20) -> dict[str, Any]:
        db = self.db
        db.execute("BEGIN")
        cursor = db.execute("SELECT created_at FROM messages WHERE id = ? AND thread_id = ?", (after, thread_id))
        (created,) = cursor.fetchone()
        rows = db.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE thread_id = ? AND (created_at, id) < (?, ?)"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (thread_id, created, after, limit + 1),
        ).fetchall()
        db.execute("COMMIT")
        data = [message_api(tuple(row)) for row in rows[:limit]]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(rows) > limit,
        }

    def claim_next(self, now: int) -> dict[str, Any] | None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        row = db.execute(
            "UPDATE runs SET status = 'in_progress', started_at = coalesce(started_at, ?), required_action = NULL"
            " WHERE id = (SELECT id FROM runs WHERE status = 'queued' AND expires_at > ?"
            " ORDER BY created_at, id LIMIT 1) AND status = 'queued' RETURNING *",
            (now, now),
        ).fetchone()
        db.execute("COMMIT")
        return None if row is None else run_api(row)

    def step_lifecycle(self, run_id: str, now: int) -> dict[str, Any]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        run = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        step_id = new_id("step")
        db.execute(
            "INSERT INTO run_steps (id, created_at, run_id, thread_id, assistant_id, type, status, metadata)"
            " VALUES (?,?,?,?,?,'tool_calls','in_progress','{}')",
            (step_id, now, run_id, run["thread_id"], run["assistant_id"]),
        )
        db.execute(
            "INSERT INTO run_step_details (step_id, type, tool_calls) VALUES (?, 'tool_calls', ?)",
            (step_id, json.dumps([])),
        )
        step_api(db.execute(STEP_SQL, (step_id,)).fetchone())
        db.execute("COMMIT")
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "UPDATE run_steps SET status = 'completed', completed_at = ? WHERE id = ? AND status = 'in_progress'"
            " RETURNING *",
            (now, step_id),
        ).fetchone()
        db.execute(
            "INSERT INTO run_step_usages (step_id, prompt_tokens, completion_tokens, total_tokens)"
            " VALUES (?, 10, 5, 15)",
            (step_id,),
        )
        row = db.execute(STEP_SQL, (step_id,)).fetchone()
        db.execute("COMMIT")
        return step_api(row)

    def import_messages(self, thread_id: str, texts: list[str], now: int) -> list[dict[str, Any]]:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        db.execute("SELECT id FROM threads WHERE id = ?", (thread_id,)).fetchone()
        db.execute(f"SELECT id FROM runs WHERE thread_id = ? AND status IN {ACTIVE}", (thread_id,)).fetchone()
        rows = [
            (
                new_id("msg"),
                now,
                thread_id,
                "completed",
                None,
                now,
                None,
                "user",
                json.dumps([{"type": "text", "text": {"value": text, "annotations": []}}]),
                None,
                None,
                "[]",
                "{}",
            )
            for text in texts
        ]
        db.executemany(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.execute("COMMIT")
        return [message_api(row) for row in rows]


STEP_SQL = (
    "SELECT s.*, d.message_id, d.tool_calls, e.code, e.message, u.prompt_tokens, u.completion_tokens,"
    " u.total_tokens FROM run_steps s JOIN run_step_details d ON d.step_id = s.id"
    " LEFT JOIN run_step_last_errors e ON e.step_id = s.id LEFT JOIN run_step_usages u ON u.step_id = s.id"
    " WHERE s.id = ?"
)


def step_api(row: sqlite3.Row) -> dict[str, Any]:
    total = row["total_tokens"]
    return {
        "id": row["id"],
        "object": "thread.run.step",
        "created_at": row["created_at"],
        "assistant_id": row["assistant_id"],
        "thread_id": row["thread_id"],
        "run_id": row["run_id"],
        "type": row["type"],
        "status": row["status"],
        "step_details": {"type": "tool_calls", "tool_calls": json.loads(row["tool_calls"])},
        "last_error": None if row["code"] is None else {"code": row["code"], "message": row["message"]},
        "expired_at": row["expired_at"],
        "cancelled_at": row["cancelled_at"],
        "failed_at": row["failed_at"],
        "completed_at": row["completed_at"],
        "metadata": json.loads(row["metadata"]),
        "usage": None
        if total is None
        else {
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "total_tokens": total,
        },
    }
