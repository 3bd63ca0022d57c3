"""Responses and Conversations against a bare-driver floor doing the same SQL, in one run:

- a response's lifecycle: create with 3 input items, claim, add an output message, complete;
- `context()` of the last response of a 100-response `previous_response_id` chain, against the
  floor's recursive query (the same SQL);
- a page of 20 items of a conversation of 100 items and of one of 100,000 (flat: keyset pages
  over the item's position).

The store is opened with `events=False`, as the floor writes no events (benchmarks.events
measures what events cost). SQLite by default; `--postgres URL` adds PostgreSQL.

    python -m benchmarks.responses [--repeat 2000] [--big 100000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.floor import Floor, PostgresFloor
from benchmarks.ops import NOW, SECONDS, medians_us, postgres_schema
from threadstore import Store
from threadstore.ids import new_id

COLUMNS = (
    "id, created_at, status, completed_at, model, instructions, previous_response_id, conversation_id, background,"
    " usage, error_code, error_message, incomplete_reason, metadata, tools, tool_choice, temperature, top_p,"
    " max_output_tokens, parallel_tool_calls, text, reasoning, truncation, store, user, input_count, output_count,"
    " context_position, sequence_number"
).replace(" user,", ' "user",')
INSERT_RESPONSE = f"INSERT INTO threadstore_responses ({COLUMNS}) VALUES ({', '.join('?' * 29)})"
INSERT_ITEM = (
    "INSERT INTO threadstore_response_items (response_id, position, kind, id, type, data) VALUES (?,?,?,?,?,?)"
)
INSERT_CONVERSATION_ITEM = (
    "INSERT INTO threadstore_conversation_items (conversation_id, position, id, type, created_at, data)"
    " VALUES (?,?,?,?,?,?)"
)
# A claim picks (and on PostgreSQL locks) its candidate, then starts it; a candidate of a
# conversation would have its conversation's row locked and rechecked in between (not here: the
# lifecycle's response has no conversation).
CANDIDATE = (
    "SELECT queued.id, queued.status, queued.background, queued.conversation_id, queued.input_count,"
    " queued.output_count, queued.sequence_number FROM threadstore_responses AS queued"
    " WHERE queued.status IN ('queued')"
    " AND queued.background AND NOT (EXISTS (SELECT 1 FROM threadstore_responses AS running"
    " WHERE running.conversation_id = queued.conversation_id AND running.status = 'in_progress'))"
    " AND NOT (EXISTS (SELECT 1 FROM threadstore_responses AS earlier WHERE earlier.conversation_id ="
    " queued.conversation_id"
    " AND earlier.status IN ('queued') AND (earlier.created_at, earlier.id) < (queued.created_at, queued.id)))"
    " ORDER BY queued.created_at, queued.id LIMIT 1{skip}"
)
START = (
    "UPDATE threadstore_responses SET status = 'in_progress', context_position = ?, sequence_number = ?"
    " WHERE threadstore_responses.id = ? AND threadstore_responses.status IN ('queued') RETURNING *"
)
CONTEXT = (
    "WITH RECURSIVE chain(id, previous_response_id, conversation_id, context_position, depth) AS"
    " (SELECT id, previous_response_id, conversation_id, context_position, 0 FROM threadstore_responses WHERE id = ?"
    " UNION ALL SELECT earlier.id, earlier.previous_response_id, earlier.conversation_id, earlier.context_position,"
    " chain.depth + 1 FROM threadstore_responses AS earlier JOIN chain ON earlier.id = chain.previous_response_id)"
    " SELECT id, type, data FROM ("
    " SELECT 0 AS part, 0 AS depth, i.position AS position, i.id, i.type, i.data FROM threadstore_conversation_items"
    " AS i"
    " JOIN chain ON i.conversation_id = chain.conversation_id AND i.position <= coalesce(chain.context_position,"
    " (SELECT c.next_position - 1 FROM threadstore_conversations AS c WHERE c.id = chain.conversation_id))"
    " UNION ALL SELECT 1, -chain.depth, r.position, r.id, r.type, r.data FROM threadstore_response_items AS r"
    " JOIN chain ON r.response_id = chain.id AND (chain.depth > 0 OR r.kind = 'input')"
    ") AS context ORDER BY part, depth, position"
)
STATE = (
    "SELECT id, status, background, conversation_id, input_count, output_count, sequence_number"
    " FROM threadstore_responses WHERE id = ?{lock}"
)
PAGE = "SELECT * FROM threadstore_conversation_items WHERE conversation_id = ? ORDER BY position DESC LIMIT 21"
USAGE = {"input_tokens": 12, "output_tokens": 3}


def message(text: str, role: str = "user") -> dict[str, Any]:
    part = (
        {"type": "output_text", "text": text, "annotations": []}
        if role == "assistant"
        else {
            "type": "input_text",
            "text": text,
        }
    )
    return {"type": "message", "role": role, "content": [part], "id": new_id("msg"), "status": "completed"}


def response_api(row: Any, output: list[Any], loads: Any) -> dict[str, Any]:
    """The API's response object from a row of responses and its output items."""
    code, reason, usage, reasoning = row["error_code"], row["incomplete_reason"], row["usage"], row["reasoning"]
    return {
        "id": row["id"],
        "object": "response",
        "created_at": row["created_at"],
        "status": row["status"],
        "background": bool(row["background"]),
        "completed_at": row["completed_at"],
        "conversation": None if row["conversation_id"] is None else {"id": row["conversation_id"]},
        "error": None if code is None else {"code": code, "message": row["error_message"]},
        "incomplete_details": None if reason is None else {"reason": reason},
        "instructions": row["instructions"],
        "max_output_tokens": row["max_output_tokens"],
        "metadata": loads(row["metadata"]),
        "model": row["model"],
        "output": output,
        "parallel_tool_calls": bool(row["parallel_tool_calls"]),
        "previous_response_id": row["previous_response_id"],
        "reasoning": None if reasoning is None else loads(reasoning),
        "store": bool(row["store"]),
        "temperature": row["temperature"],
        "text": loads(row["text"]),
        "tool_choice": loads(row["tool_choice"]),
        "tools": loads(row["tools"]),
        "top_p": row["top_p"],
        "truncation": row["truncation"],
        "usage": None if usage is None else loads(usage),
        "user": row["user"],
    }


class ResponseWork:
    """The floor's responses: the statements threadstore sends, by hand."""

    execute: Any
    execute_many: Any
    loads: Any
    BEGIN_WRITE: str
    LOCK: str
    SKIP_LOCKED: str

    def lifecycle(self, now: int) -> dict[str, Any]:
        execute, loads = self.execute, self.loads
        execute(self.BEGIN_WRITE)
        response_id, items = new_id("resp"), [message(f"q{n}") for n in range(3)]
        values: tuple[Any, ...] = (
            response_id,
            now,
            "queued",
            None,
            "gpt-4o",
            None,
            None,
            None,
            True,
            None,
            None,
            None,
            None,
            "{}",
        )
        values += ("[]", '"auto"', None, None, None, True, '{"format": {"type": "text"}}', None, "disabled", True)
        execute(INSERT_RESPONSE, (*values, None, 3, 0, None, 2))
        rows = [(response_id, n, "input", item["id"], "message", json.dumps(item)) for n, item in enumerate(items)]
        self.execute_many(INSERT_ITEM, rows)
        execute("COMMIT")
        execute(self.BEGIN_WRITE)
        candidate = execute(CANDIDATE.format(skip=self.SKIP_LOCKED)).fetchone()
        claimed = execute(START, (None, candidate["sequence_number"] + 1, candidate["id"])).fetchone()
        response_api(claimed, [], loads)
        execute("COMMIT")
        execute(self.BEGIN_WRITE)
        row = execute(STATE.format(lock=self.LOCK), (response_id,)).fetchone()
        reply = message("Hello!", role="assistant")
        position = row["input_count"] + row["output_count"]
        execute(INSERT_ITEM, (response_id, position, "output", reply["id"], "message", json.dumps(reply)))
        execute(
            "UPDATE threadstore_responses SET output_count = ?, sequence_number = ? WHERE threadstore_responses.id = ?",
            (row["output_count"] + 1, row["sequence_number"] + 2, response_id),
        )
        execute("COMMIT")
        execute(self.BEGIN_WRITE)
        row = execute(STATE.format(lock=self.LOCK), (response_id,)).fetchone()
        rows = execute(
            "SELECT * FROM threadstore_response_items WHERE response_id = ? AND kind = 'output' ORDER BY position",
            (response_id,),
        )
        output = [loads(item["data"]) for item in rows.fetchall()]
        done = execute(
            "UPDATE threadstore_responses SET status = 'completed', completed_at = ?, usage = ?, sequence_number = ?"
            " WHERE threadstore_responses.id = ? AND threadstore_responses.status IN ('in_progress') RETURNING *",
            (now, json.dumps(USAGE), row["sequence_number"] + 1, response_id),
        ).fetchone()
        execute("COMMIT")
        return response_api(done, output, loads)

    def context(self, response_id: str) -> list[dict[str, Any]]:
        self.execute("BEGIN")
        rows = self.execute(CONTEXT, (response_id,)).fetchall()
        self.execute("COMMIT")
        return [self.loads(row["data"]) for row in rows]

    def page(self, conversation_id: str) -> list[dict[str, Any]]:
        self.execute("BEGIN")
        rows = self.execute(PAGE, (conversation_id,)).fetchall()
        self.execute("COMMIT")
        return [self.loads(row["data"]) for row in rows[:20]]


class SqliteResponses(ResponseWork, Floor):
    """On raw sqlite3."""


class PostgresResponses(ResponseWork, PostgresFloor):
    """On psycopg."""


def chain(store: Store, length: int) -> str:
    """A chain of `length` completed responses, each with a question and an answer; the last's id."""
    previous = None
    for turn in range(length):
        response = store.responses.create(model="gpt-4o", input=f"q{turn}", previous_response_id=previous).id
        answer = {"type": "message", "role": "assistant", "content": f"a{turn}", "status": "completed"}
        store.responses.add_output_item(response, item=answer)
        store.responses.complete(response)
        previous = response
    return store.responses.create(model="gpt-4o", input="last", previous_response_id=previous).id


def fill(floor: Floor, conversation_id: str, count: int) -> None:
    """`count` items at the end of a conversation, by raw inserts (setup, not measured)."""
    floor.execute("BEGIN")
    for start in range(0, count, 10_000):
        batch = []
        for position in range(start, min(count, start + 10_000)):
            item = message(f"m{position}")
            batch.append((conversation_id, position, item["id"], "message", SECONDS, json.dumps(item)))
        floor.execute_many(INSERT_CONVERSATION_ITEM, batch)
    floor.execute("UPDATE threadstore_conversations SET next_position = ? WHERE id = ?", (count, conversation_id))
    floor.execute("COMMIT")


def measure(url: str, floor: ResponseWork, args: argparse.Namespace) -> None:
    store = Store(url, clock=lambda: NOW, migrate_on_open=True, events=False)
    last = chain(store, 100)
    small, big = store.conversations.create().id, store.conversations.create().id
    fill(floor, small, 100)  # type: ignore[arg-type]
    fill(floor, big, args.big)  # type: ignore[arg-type]
    if isinstance(floor, PostgresFloor):
        floor.analyze()

    def lifecycle() -> None:
        created = store.responses.create(model="gpt-4o", input=[message(f"q{n}") for n in range(3)], background=True)
        claimed = store.responses.claim_next()
        assert claimed is not None and claimed.id == created.id
        reply = {"type": "message", "role": "assistant", "content": "Hello!", "status": "completed"}
        store.responses.add_output_item(created.id, item=reply)
        store.responses.complete(created.id, usage=USAGE)

    assert len(store.responses.context(last)) == len(floor.context(last)) == 201
    assert [i.to_api() for i in store.conversations.items.list(big)] == floor.page(big)
    cases = [
        ("response lifecycle (create with 3 input items, claim, add an output message, complete)", lifecycle,
         lambda: floor.lifecycle(SECONDS)),
        ("context() of a 100-response chain", lambda: store.responses.context(last), lambda: floor.context(last)),
        ("page of 20 items, conversation of 100", lambda: store.conversations.items.list(small),
         lambda: floor.page(small)),
        (f"page of 20 items, conversation of {args.big:,}", lambda: store.conversations.items.list(big),
         lambda: floor.page(big)),
    ]  # fmt: skip
    times = medians_us([call for _, mine, theirs in cases for call in (mine, theirs)], args.repeat)
    print("| operation | threadstore / floor | threadstore µs | floor µs |")
    print("|---|---|---|---|")
    for index, (name, _, _) in enumerate(cases):
        mine, theirs = times[2 * index], times[2 * index + 1]
        print(f"| {name} | {mine / theirs:.2f} | {mine:.0f} | {theirs:.0f} |")
    print(f"page at {args.big:,} items / page at 100 items: {times[6] / times[4]:.2f}", flush=True)
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--big", type=int, default=100_000, help="items in the big conversation")
    parser.add_argument("--postgres", default=os.environ.get("THREADSTORE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    path = str(Path(tempfile.mkdtemp()) / "bench.db")
    print(f"{os.cpu_count()} cores; median of {args.repeat} calls each, microseconds")
    print("\nSQLite (WAL, synchronous=NORMAL); the floor is raw sqlite3")
    Store(f"sqlite:///{path}").close()  # migrated before the floor connects
    measure(f"sqlite:///{path}", SqliteResponses(path), args)
    if args.postgres:
        print("\nPostgreSQL; the floor is psycopg")
        with postgres_schema(args.postgres) as url:
            Store(url, migrate_on_open=True).close()
            measure(url, PostgresResponses(url), args)


if __name__ == "__main__":
    main()
