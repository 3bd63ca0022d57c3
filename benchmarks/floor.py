"""The floor: the bare driver doing the SQL threadstore does, returning the same API dicts. No
validation beyond what the SQL needs.

`Floor` is raw sqlite3 with threadstore's pragmas and durability; `PostgresFloor` is psycopg
with the same SQL (written with `?`, sent with `%s`), the row locks threadstore takes on
PostgreSQL, and JSONB decoded by psycopg as threadstore has it decoded.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from threadstore.db import BUSY_TIMEOUT_MS
from threadstore.ids import new_id, new_uuid

Loads = Callable[[Any], Any]
ACTIVE = "('cancelling', 'in_progress', 'queued', 'requires_action')"
MESSAGE_COLUMNS = (
    "id, created_at, thread_id, status, incomplete_reason, completed_at, incomplete_at, role, content,"
    " assistant_id, run_id, attachments, metadata"
)
INSERT_MESSAGE = f"INSERT INTO threadstore_messages ({MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"

# LangGraph: the statements threadstore sends (captured from it), with its bound constants
# written as literals, as SQL written by hand has them.
LG_THREAD_COLUMNS = 'thread_id, created_at, updated_at, metadata, status, "values"'
LG_RUN_COLUMNS = (
    "run_id, thread_id, assistant_id, created_at, updated_at, status, metadata, kwargs, multitask_strategy,"
    " cancel_reason, attempt, lease_expires_at"
)
INSERT_LG_THREAD = f"INSERT INTO threadstore_langgraph_threads ({LG_THREAD_COLUMNS}) VALUES (?,?,?,?,?,?)"
# The run's place in the order (`seq`) is numbered by the database on create and again at the
# end: Floor.NEXT_SEQ.
INSERT_LG_RUN = (
    f"INSERT INTO threadstore_langgraph_runs ({LG_RUN_COLUMNS}, seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,{{seq}})"
)
INSERT_LG_METADATA = (
    'INSERT INTO threadstore_langgraph_thread_metadata (thread_id, "key", value, created_at) VALUES (?,?,?,?)'
    " ON CONFLICT DO NOTHING"
)
# PostgreSQL: the thread and its index rows in one statement, as threadstore sends them (its
# parameters: the thread, its creation time, the keys, the tokens, then the thread's row).
INSERT_LG_THREAD_INDEXED = (
    "WITH indexed AS (INSERT INTO threadstore_langgraph_thread_metadata (thread_id, key, value, created_at)"
    " SELECT ?, entry.key, entry.value, ? FROM unnest(?::varchar[], ?::varchar[]) AS entry(key, value)"
    f" ON CONFLICT DO NOTHING) {INSERT_LG_THREAD}"
)
LG_THREAD_STATUS = (
    "CASE WHEN EXISTS (SELECT * FROM threadstore_langgraph_runs WHERE thread_id = ? AND status IN ('pending',"
    " 'running'))"
    " THEN 'busy' ELSE coalesce((SELECT CASE WHEN status = 'success' THEN 'idle' WHEN status = 'error' THEN 'error'"
    " WHEN status = 'timeout' THEN 'error' WHEN status = 'interrupted' THEN 'interrupted' END"
    " FROM threadstore_langgraph_runs WHERE thread_id = ? ORDER BY seq DESC, run_id DESC LIMIT 1), 'idle') END"
)
# The derived thread status, written only when it changes (its parameters: now, then the thread 5 times).
LG_REFRESH = (
    f"UPDATE threadstore_langgraph_threads SET updated_at = ?, status = {LG_THREAD_STATUS}"
    f" WHERE thread_id = ? AND status != {LG_THREAD_STATUS}"
)
LG_NOT_RUNNING = (
    "NOT EXISTS (SELECT * FROM threadstore_langgraph_runs AS running WHERE running.thread_id = {thread}"
    " AND running.status = 'running')"
)
LG_LEASE = 300_000_000  # threadstore's default lease, in microseconds
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# A user's newest threads through the metadata index, each index row meeting the thread of its id
# and creation time (PostgreSQL: as a LATERAL subquery of one row, as threadstore sends it).
LG_SEARCH_COLUMNS = (
    'thread.thread_id, thread.created_at, thread.updated_at, thread.metadata, thread.status, thread."values"'
)
LG_SEARCH = (
    f"SELECT {LG_SEARCH_COLUMNS} FROM threadstore_langgraph_threads AS thread"
    " JOIN threadstore_langgraph_thread_metadata AS entry ON entry.thread_id = thread.thread_id"
    ' AND entry.created_at = thread.created_at AND entry."key" = ? AND entry.value = ?'
    " ORDER BY entry.created_at DESC, entry.thread_id DESC LIMIT ? OFFSET ?"
)
LG_SEARCH_LATERAL = (
    f"SELECT {LG_SEARCH_COLUMNS} FROM threadstore_langgraph_thread_metadata AS entry JOIN LATERAL"
    " (SELECT * FROM threadstore_langgraph_threads AS t WHERE t.thread_id = entry.thread_id"
    " AND t.created_at = entry.created_at LIMIT 1) AS thread ON true"
    " WHERE entry.key = (SELECT ?::varchar) AND entry.value = (SELECT ?::varchar)"
    " ORDER BY entry.created_at DESC, entry.thread_id DESC LIMIT (SELECT ?::int) OFFSET (SELECT ?::int)"
)


def lg_metadata_rows(thread_id: str, metadata: dict[str, str], created_at: int) -> list[tuple[str, str, str, int]]:
    """The rows of threadstore's metadata index for a thread whose metadata values are strings
    (threadstore tokens a string value as "s:" + the value)."""
    return [(thread_id, key, "s:" + value, created_at) for key, value in metadata.items()]


def connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}", "synchronous=NORMAL"):
        connection.execute(f"PRAGMA {pragma}")
    return connection


def connect_postgres(url: str, **options: Any) -> Any:
    """A psycopg connection to the database (and search path, and application name) of a
    SQLAlchemy URL."""
    import psycopg

    parsed = sa.make_url(url)
    return psycopg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
        options=parsed.query.get("options"),
        application_name=parsed.query.get("application_name"),
        **options,
    )


def message_row(thread_id: str, text: str, now: int) -> tuple[Any, ...]:
    content = [{"type": "text", "text": {"value": text, "annotations": []}}]
    return (
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


def message_api(row: tuple[Any, ...], loads: Loads) -> dict[str, Any]:
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
        "content": loads(content),
        "assistant_id": assistant,
        "run_id": run,
        "attachments": loads(attachments),
        "metadata": loads(meta),
    }


def run_api(row: Mapping[str, Any], loads: Loads) -> dict[str, Any]:
    code, total = row["last_error_code"], row["usage_total_tokens"]
    return {
        "id": row["id"],
        "object": "thread.run",
        "created_at": row["created_at"],
        "thread_id": row["thread_id"],
        "assistant_id": row["assistant_id"],
        "status": row["status"],
        "required_action": None if row["required_action"] is None else loads(row["required_action"]),
        "last_error": None if code is None else {"code": code, "message": row["last_error_message"]},
        "expires_at": row["expires_at"],
        "started_at": row["started_at"],
        "cancelled_at": row["cancelled_at"],
        "failed_at": row["failed_at"],
        "completed_at": row["completed_at"],
        "incomplete_details": {"reason": row["incomplete_reason"]} if row["status"] == "incomplete" else None,
        "model": row["model"],
        "instructions": row["instructions"],
        "tools": loads(row["tools"]),
        "metadata": loads(row["metadata"]),
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
        "truncation_strategy": loads(row["truncation_strategy"]),
        "response_format": loads(row["response_format"]),
        "tool_choice": loads(row["tool_choice"]),
        "parallel_tool_calls": bool(row["parallel_tool_calls"]),
    }


def iso(micros: int) -> str:
    """Unix microseconds as ISO 8601 with the UTC offset."""
    return (EPOCH + timedelta(microseconds=micros)).isoformat()


def lg_thread_api(row: Mapping[str, Any], loads: Loads) -> dict[str, Any]:
    values = row["values"]
    return {
        "thread_id": row["thread_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "metadata": loads(row["metadata"]),
        "status": row["status"],
        "values": None if values is None else loads(values),
        "interrupts": {},
        "extracted": {},
    }


def lg_run_api(row: Mapping[str, Any], loads: Loads) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "thread_id": row["thread_id"],
        "assistant_id": row["assistant_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "status": row["status"],
        "metadata": loads(row["metadata"]),
        "kwargs": loads(row["kwargs"]),
        "multitask_strategy": row["multitask_strategy"],
        "cancel_reason": row["cancel_reason"],
    }


def lg_run(row: Mapping[str, Any], loads: Loads) -> dict[str, Any]:
    """A claimed run as a worker gets it (threadstore's LangGraphRun): every column, JSON decoded."""
    return {**row, "metadata": loads(row["metadata"]), "kwargs": loads(row["kwargs"])}


STEP_SQL = (
    "SELECT s.*, d.message_id, d.tool_calls, e.code, e.message, u.prompt_tokens, u.completion_tokens,"
    " u.total_tokens FROM threadstore_run_steps s JOIN threadstore_run_step_details d ON d.id = s.step_details"
    " LEFT JOIN threadstore_run_step_last_errors e ON e.id = s.last_error LEFT JOIN threadstore_run_step_usages u ON"
    " u.id = s.usage"
    " WHERE s.id = ?"
)


def step_api(row: Mapping[str, Any], loads: Loads) -> dict[str, Any]:
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
        "step_details": {"type": "tool_calls", "tool_calls": loads(row["tool_calls"])},
        "last_error": None if row["code"] is None else {"code": row["code"], "message": row["message"]},
        "expired_at": row["expired_at"],
        "cancelled_at": row["cancelled_at"],
        "failed_at": row["failed_at"],
        "completed_at": row["completed_at"],
        "metadata": loads(row["metadata"]),
        "usage": None
        if total is None
        else {
            "prompt_tokens": row["prompt_tokens"],
            "completion_tokens": row["completion_tokens"],
            "total_tokens": total,
        },
    }


class Floor:
    """The same work as threadstore's repositories, by hand, on SQLite."""

    BEGIN_WRITE = "BEGIN IMMEDIATE"  # SQLite: the write lock up front, as threadstore takes it
    LOCK = ""  # row locks: none on SQLite, whose write transaction is exclusive
    SKIP_LOCKED = ""
    THREAD_SKIP_LOCKED = ""  # a LangGraph claim locks the candidate's thread
    LG_SEARCH = LG_SEARCH
    NEXT_SEQ = "(SELECT coalesce(max(ordered.seq), 0) + 1 FROM threadstore_langgraph_runs AS ordered)"
    GREATEST = "max"  # SQLite's max() of several arguments

    def __init__(self, path: str) -> None:
        self.db: Any = connect(path)
        self.db.row_factory = sqlite3.Row
        self.execute: Callable[..., Any] = self.db.execute
        self.loads: Loads = json.loads

    def values(self, row: Any) -> tuple[Any, ...]:
        return tuple(row)

    @property
    def insert_lg_run(self) -> str:
        return INSERT_LG_RUN.format(seq=self.NEXT_SEQ)

    def analyze(self) -> None:
        """Bring the planner's statistics up to date after the setup (PostgreSQL only: SQLite
        plans without them unless asked, as threadstore's users' databases do)."""

    def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.db.executemany(sql, rows)

    def create_message(self, thread_id: str, text: str, now: int) -> dict[str, Any]:
        execute = self.execute
        execute(self.BEGIN_WRITE)
        if execute(f"SELECT id FROM threadstore_threads WHERE id = ?{self.LOCK}", (thread_id,)).fetchone() is None:
            raise LookupError(thread_id)
        if execute(
            f"SELECT id FROM threadstore_runs WHERE thread_id = ? AND status IN {ACTIVE}", (thread_id,)
        ).fetchone():
            raise RuntimeError("thread is busy")
        row = message_row(thread_id, text, now)
        execute(INSERT_MESSAGE, row)
        execute("COMMIT")
        return message_api(row, json.loads)

    def get_run(self, run_id: str) -> dict[str, Any]:
        execute = self.execute
        execute("BEGIN")
        row = execute("SELECT * FROM threadstore_runs WHERE id = ?", (run_id,)).fetchone()
        execute("COMMIT")
        return run_api(row, self.loads)

    def run_lifecycle(self, thread_id: str, assistant: Mapping[str, Any], now: int) -> dict[str, Any]:
        execute = self.execute
        execute(self.BEGIN_WRITE)
        execute(f"SELECT id FROM threadstore_threads WHERE id = ?{self.LOCK}", (thread_id,)).fetchone()
        execute(f"SELECT id FROM threadstore_runs WHERE thread_id = ? AND status IN {ACTIVE}", (thread_id,)).fetchone()
        execute(
            "SELECT * FROM threadstore_assistants WHERE id = ? AND deleted_at IS NULL", (assistant["id"],)
        ).fetchone()
        run_id = new_id("run")
        tools = assistant["tools"] if isinstance(assistant["tools"], str) else json.dumps(assistant["tools"])
        execute(
            "INSERT INTO threadstore_runs (id, created_at, thread_id, assistant_id, status, expires_at, model,"
            " instructions,"
            " tools, metadata, truncation_strategy, response_format, tool_choice, parallel_tool_calls)"
            " VALUES (?,?,?,?,'queued',?,?,?,?,'{}',?,'\"auto\"','\"auto\"',TRUE)",
            (
                run_id,
                now,
                thread_id,
                assistant["id"],
                now + 600,
                assistant["model"],
                assistant["instructions"] or "",
                tools,
                '{"type": "auto", "last_messages": null}',
            ),
        )
        run_api(execute("SELECT * FROM threadstore_runs WHERE id = ?", (run_id,)).fetchone(), self.loads)
        execute("COMMIT")
        execute(self.BEGIN_WRITE)
        run_api(
            execute(
                "UPDATE threadstore_runs SET status = 'in_progress', started_at = coalesce(started_at, ?),"
                " required_action = NULL"
                " WHERE id = ? AND status IN ('queued') RETURNING *",
                (now, run_id),
            ).fetchone(),
            self.loads,
        )
        execute("COMMIT")
        execute(self.BEGIN_WRITE)
        row = execute(
            "UPDATE threadstore_runs SET status = 'completed', completed_at = ?, expires_at = NULL WHERE id = ?"
            " AND status IN ('cancelling', 'in_progress') RETURNING *",
            (now, run_id),
        ).fetchone()
        execute(
            "UPDATE threadstore_run_steps SET status = 'completed', completed_at = ? WHERE run_id = ? AND status ="
            " 'in_progress'"
            " RETURNING id",
            (now, run_id),
        ).fetchall()
        execute(
            "UPDATE threadstore_messages SET status = 'completed', completed_at = ?, incomplete_reason = NULL"
            " WHERE run_id = ? AND status = 'in_progress'",
            (now, run_id),
        )
        execute("COMMIT")
        return run_api(row, self.loads)

    def message_page(self, thread_id: str, after: str, limit: int = 20) -> dict[str, Any]:
        execute = self.execute
        execute("BEGIN")
        (created,) = self.values(
            execute(
                "SELECT created_at FROM threadstore_messages WHERE id = ? AND thread_id = ?", (after, thread_id)
            ).fetchone()
        )
        rows = execute(
            f"SELECT {MESSAGE_COLUMNS} FROM threadstore_messages WHERE thread_id = ? AND (created_at, id) < (?, ?)"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (thread_id, created, after, limit + 1),
        ).fetchall()
        execute("COMMIT")
        data = [message_api(self.values(row), self.loads) for row in rows[:limit]]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(rows) > limit,
        }

    def claim_next(self, now: int) -> dict[str, Any] | None:
        execute = self.execute
        execute(self.BEGIN_WRITE)
        # As threadstore claims: a start time no earlier than the run's creation, the claim counted
        # in `attempt`, and the lease (none here: the benchmark claims without one).
        row = execute(
            "UPDATE threadstore_runs SET status = 'in_progress',"
            f" started_at = coalesce(started_at, {self.GREATEST}(?, coalesce(created_at, ?), coalesce(started_at, ?))),"
            " attempt = attempt + 1, lease_expires_at = ? WHERE status = 'queued'"
            " AND id = (SELECT id FROM threadstore_runs WHERE status = 'queued' AND expires_at > ?"
            f" ORDER BY created_at, id LIMIT 1{self.SKIP_LOCKED}) RETURNING *",
            (now, now, now, None, now),
        ).fetchone()
        execute("COMMIT")
        return None if row is None else run_api(row, self.loads)

    def step_lifecycle(self, run_id: str, now: int) -> dict[str, Any]:
        execute = self.execute
        execute(self.BEGIN_WRITE)
        run = execute(f"SELECT * FROM threadstore_runs WHERE id = ?{self.LOCK}", (run_id,)).fetchone()
        step_id = new_id("step")
        details = execute(
            "INSERT INTO threadstore_run_step_details (run_id, type, tool_calls) VALUES (?, 'tool_calls', ?)"
            " RETURNING id",
            (run_id, json.dumps([])),
        ).fetchone()
        step = {"id": step_id, "created_at": now, "run_id": run_id, "thread_id": run["thread_id"]}
        step.update(assistant_id=run["assistant_id"], type="tool_calls", status="in_progress", metadata="{}")
        execute(
            "INSERT INTO threadstore_run_steps (id, created_at, run_id, thread_id, assistant_id, type, status,"
            " metadata,"
            " step_details) VALUES (?,?,?,?,?,'tool_calls','in_progress','{}',?)",
            (step_id, now, run_id, run["thread_id"], run["assistant_id"], details["id"]),
        )
        execute("COMMIT")
        ends = dict.fromkeys(("expired_at", "cancelled_at", "failed_at", "completed_at", "code", "total_tokens"))
        step_api({**step, **ends, "tool_calls": "[]"}, json.loads)  # built from what was written, not read back
        execute(self.BEGIN_WRITE)
        execute(
            "UPDATE threadstore_run_steps SET status = 'completed', completed_at = ? WHERE id = ? AND status ="
            " 'in_progress'"
            " RETURNING *",
            (now, step_id),
        ).fetchone()
        usage = execute(
            "INSERT INTO threadstore_run_step_usages (run_id, prompt_tokens, completion_tokens, total_tokens)"
            " VALUES (?, 10, 5, 15) RETURNING id",
            (run_id,),
        ).fetchone()
        execute("UPDATE threadstore_run_steps SET usage = ?, last_error = ? WHERE id = ?", (usage["id"], None, step_id))
        row = execute(STEP_SQL, (step_id,)).fetchone()
        execute("COMMIT")
        return step_api(row, self.loads)

    def import_messages(self, thread_id: str, texts: list[str], now: int) -> list[dict[str, Any]]:
        execute = self.execute
        execute(self.BEGIN_WRITE)
        execute(f"SELECT id FROM threadstore_threads WHERE id = ?{self.LOCK}", (thread_id,)).fetchone()
        execute(f"SELECT id FROM threadstore_runs WHERE thread_id = ? AND status IN {ACTIVE}", (thread_id,)).fetchone()
        rows = [message_row(thread_id, text, now) for text in texts]
        self.execute_many(INSERT_MESSAGE, rows)
        execute("COMMIT")
        return [message_api(row, json.loads) for row in rows]

    def lg_create_thread(self, metadata: dict[str, Any], now: int) -> dict[str, Any]:
        execute = self.execute
        thread_id = new_uuid()
        execute(self.BEGIN_WRITE)
        if execute(
            f"SELECT {LG_THREAD_COLUMNS} FROM threadstore_langgraph_threads WHERE thread_id = ?", (thread_id,)
        ).fetchone():
            raise RuntimeError("thread exists")
        self.lg_insert_thread(thread_id, metadata, now)
        execute("COMMIT")
        row = {"thread_id": thread_id, "created_at": now, "updated_at": now, "status": "idle"}
        return lg_thread_api({**row, "metadata": metadata, "values": None}, _decoded)

    def lg_insert_thread(self, thread_id: str, metadata: dict[str, Any], now: int) -> None:
        """The thread's INSERT and its index rows', one statement each."""
        self.execute(INSERT_LG_THREAD, (thread_id, now, now, json.dumps(metadata), "idle", None))
        for row in lg_metadata_rows(thread_id, metadata, now):
            self.execute(INSERT_LG_METADATA, row)

    def lg_create_run(self, thread_id: str, kwargs: dict[str, Any], now: int) -> dict[str, Any]:
        execute = self.execute
        run_id = new_uuid()
        execute(self.BEGIN_WRITE)
        locked = execute(
            f"SELECT thread_id FROM threadstore_langgraph_threads WHERE thread_id = ?{self.LOCK}", (thread_id,)
        )
        if locked.fetchone() is None:
            raise LookupError(thread_id)
        if execute(f"SELECT {LG_RUN_COLUMNS} FROM threadstore_langgraph_runs WHERE run_id = ?", (run_id,)).fetchone():
            raise RuntimeError("run exists")
        row = (run_id, thread_id, "agent", now, now, "pending", "{}", json.dumps(kwargs), "enqueue", None, 0, None)
        execute(self.insert_lg_run, row)
        execute(LG_REFRESH, (now, *[thread_id] * 5))
        execute("COMMIT")
        values = dict(zip(LG_RUN_COLUMNS.split(", "), row, strict=True))
        return lg_run_api({**values, "metadata": {}, "kwargs": kwargs}, _decoded)

    def lg_claim_next(self, now: int) -> dict[str, Any] | None:
        """Claim the oldest pending run whose thread has no running run (with its thread locked)."""
        execute = self.execute
        execute(self.BEGIN_WRITE)
        candidate = execute(
            "SELECT threadstore_langgraph_runs.run_id, threadstore_langgraph_runs.thread_id"
            " FROM threadstore_langgraph_runs JOIN threadstore_langgraph_threads"
            " ON threadstore_langgraph_threads.thread_id = threadstore_langgraph_runs.thread_id"
            " WHERE threadstore_langgraph_runs.status = 'pending' AND "
            + LG_NOT_RUNNING.format(thread="threadstore_langgraph_runs.thread_id")
            + f" ORDER BY threadstore_langgraph_runs.seq LIMIT 1{self.THREAD_SKIP_LOCKED}"
        ).fetchone()
        row = None
        if candidate is not None:
            row = execute(
                "UPDATE threadstore_langgraph_runs SET updated_at = ?, status = 'running', attempt = attempt + 1,"
                " lease_expires_at = ? + ? WHERE status IN ('pending') AND run_id = ? AND "
                + LG_NOT_RUNNING.format(thread="?")
                + " RETURNING *",
                (now, now, LG_LEASE, candidate["run_id"], candidate["thread_id"]),
            ).fetchone()
        execute("COMMIT")
        return None if row is None else lg_run(row, self.loads)

    def lg_finish(self, run_id: str, attempt: int, now: int) -> dict[str, Any]:
        """End a running run in success; its thread's status follows."""
        execute = self.execute
        execute(self.BEGIN_WRITE)
        (thread_id,) = self.values(
            execute(
                "SELECT thread_id FROM threadstore_langgraph_threads WHERE thread_id ="
                f" (SELECT thread_id FROM threadstore_langgraph_runs WHERE run_id = ?){self.LOCK}",
                (run_id,),
            ).fetchone()
        )
        row = execute(
            "UPDATE threadstore_langgraph_runs SET updated_at = ?, status = 'success', lease_expires_at = NULL,"
            f" seq = {self.NEXT_SEQ} WHERE run_id = ? AND status IN ('running') AND attempt = ? RETURNING *",
            (now, run_id, attempt),
        ).fetchone()
        execute(LG_REFRESH, (now, *[thread_id] * 5))
        execute("COMMIT")
        return lg_run_api(row, self.loads)

    def lg_claim_and_finish(self, now: int) -> dict[str, Any]:
        run = self.lg_claim_next(now)
        assert run is not None, "no pending run left to claim"
        return self.lg_finish(run["run_id"], run["attempt"], now)

    def lg_heartbeat(self, run_id: str, attempt: int, now: int) -> dict[str, Any]:
        execute = self.execute
        execute(self.BEGIN_WRITE)
        row = execute(
            "UPDATE threadstore_langgraph_runs SET updated_at = ?, lease_expires_at = ? + ?"
            " WHERE run_id = ? AND status = 'running' AND attempt = ? RETURNING *",
            (now, now, LG_LEASE, run_id, attempt),
        ).fetchone()
        execute("COMMIT")
        return lg_run_api(row, self.loads)

    def lg_get_run(self, run_id: str) -> dict[str, Any]:
        execute = self.execute
        execute("BEGIN")
        row = execute(f"SELECT {LG_RUN_COLUMNS} FROM threadstore_langgraph_runs WHERE run_id = ?", (run_id,)).fetchone()
        execute("COMMIT")
        return lg_run_api(row, self.loads)

    def lg_search_threads(self, key: str, value: str, limit: int = 10) -> list[dict[str, Any]]:
        """A user's newest threads through threadstore's metadata index (a string value)."""
        execute = self.execute
        execute("BEGIN")
        rows = execute(self.LG_SEARCH, (key, "s:" + value, limit, 0)).fetchall()
        execute("COMMIT")
        return [lg_thread_api(row, self.loads) for row in rows]

    def lg_list_runs(self, thread_id: str, limit: int = 10) -> list[dict[str, Any]]:
        execute = self.execute
        execute("BEGIN")
        rows = execute(
            f"SELECT {LG_RUN_COLUMNS} FROM threadstore_langgraph_runs WHERE thread_id = ?"
            " ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?",
            (thread_id, limit, 0),
        ).fetchall()
        found = (
            rows
            or execute(
                "SELECT thread_id FROM threadstore_langgraph_threads WHERE thread_id = ?", (thread_id,)
            ).fetchone()
        )
        if not found:  # a run of the list proves its thread exists
            raise LookupError(thread_id)
        execute("COMMIT")
        return [lg_run_api(row, self.loads) for row in rows]


class PostgresFloor(Floor):
    """The same work on PostgreSQL through psycopg, with the row locks threadstore takes there."""

    BEGIN_WRITE = "BEGIN"
    LOCK = " FOR UPDATE"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    THREAD_SKIP_LOCKED = " FOR UPDATE OF threadstore_langgraph_threads SKIP LOCKED"
    NEXT_SEQ = "nextval('threadstore_langgraph_runs_seq')"
    LG_SEARCH = LG_SEARCH_LATERAL
    GREATEST = "greatest"

    def __init__(self, url: str) -> None:
        from psycopg.rows import dict_row

        # BEGIN and COMMIT are sent by hand, as on SQLite.
        self.db = connect_postgres(url, autocommit=True, row_factory=dict_row)
        self._sql: dict[str, str] = {}
        self.execute = self._execute
        self.loads = _decoded

    def _execute(self, sql: str, params: Any = ()) -> Any:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = sql.replace("?", "%s")
        return self.db.execute(text, params)

    def values(self, row: Any) -> tuple[Any, ...]:
        return tuple(row.values())

    def lg_insert_thread(self, thread_id: str, metadata: dict[str, Any], now: int) -> None:
        """The thread's INSERT and its index rows' in one statement, as threadstore sends them."""
        keys = list(metadata)
        tokens = ["s:" + value for value in metadata.values()]
        row = (thread_id, now, now, json.dumps(metadata), "idle", None)
        self.execute(INSERT_LG_THREAD_INDEXED, (thread_id, now, keys, tokens, *row))

    def execute_many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.db.cursor().executemany(sql.replace("?", "%s"), rows)

    def analyze(self) -> None:
        # As autovacuum would have by then: a statement prepared on a pooled connection while
        # the tables were nearly empty keeps that plan (a sequential scan of every pending run,
        # say) until statistics change, while the floor's connection prepares it afterwards.
        self.execute("ANALYZE")


def _decoded(value: Any) -> Any:
    return value  # psycopg has decoded JSONB already
