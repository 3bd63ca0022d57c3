"""threadstore's hot paths against the floor (raw sqlite3, same SQL, same pragmas, same API dicts)
and against a naive SQLModel implementation (a session per call, ORM objects), in one run.

    python -m benchmarks.ops [--repeat 2000] [--big 1000000]

Prints, for each operation, the median time of each implementation and the ratios
threadstore/floor and naive/threadstore.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.floor import MESSAGE_COLUMNS, Floor, connect
from benchmarks.naive import Naive
from threadstore import Store
from threadstore.ids import new_id

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SECONDS = int(NOW.timestamp())


def fill_thread(path: str, thread_id: str, count: int) -> list[str]:
    """Append `count` messages to a thread with raw inserts (setup, not measured); 50 share a second."""
    db = connect(path)
    content = json.dumps([{"type": "text", "text": {"value": "benchmark message", "annotations": []}}])
    ids = []
    db.execute("BEGIN")
    for start in range(0, count, 10_000):
        batch = []
        for index in range(start, min(count, start + 10_000)):
            ids.append(new_id("msg"))
            created = SECONDS - count // 50 + index // 50
            batch.append(
                (ids[-1], created, thread_id, "completed", None, created, None, "user", content, None, None, "[]", "{}")
            )
        db.executemany(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", batch)
    db.execute("COMMIT")
    db.close()
    return ids


def median_us(operation: Callable[[], Any], repeat: int) -> float:
    for _ in range(min(50, repeat)):  # warm caches and statement caches first
        operation()
    times = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        operation()
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--big", type=int, default=1_000_000, help="messages in the big thread")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    path = str(workdir / "bench.db")
    url = f"sqlite:///{path}"
    store = Store(url, clock=lambda: NOW)
    assistant = store.assistants.create(model="gpt-4o", instructions="be brief")
    writes, lifecycle, small, big = (store.threads.create().id for _ in range(4))
    small_ids = fill_thread(path, small, 1000)
    big_ids = fill_thread(path, big, args.big)
    run_id = store.runs.create(store.threads.create().id, assistant_id=assistant.id).id
    floor, naive = Floor(path), Naive(url)
    assistant_row = floor.db.execute("SELECT * FROM assistants WHERE id = ?", (assistant.id,)).fetchone()

    def page(ids: list[str]) -> str:
        return ids[len(ids) // 2]

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any], Callable[[], Any]]] = [
        (
            "create message",
            lambda: store.messages.create(writes, role="user", content="hello").to_api(),
            lambda: floor.create_message(writes, "hello", SECONDS),
            lambda: naive.create_message(writes, "hello", SECONDS),
        ),
        (
            "get run",
            lambda: store.runs.get(run_id).to_api(),
            lambda: floor.get_run(run_id),
            lambda: naive.get_run(run_id),
        ),
        (
            "run lifecycle (create, start, complete)",
            lambda: store.runs.complete(
                store.runs.start(store.runs.create(lifecycle, assistant_id=assistant.id).id).id
            ).to_api(),
            lambda: floor.run_lifecycle(lifecycle, assistant_row, SECONDS),
            lambda: naive.run_lifecycle(lifecycle, assistant.id, SECONDS),
        ),
        (
            "page of 20 messages, thread of 1,000",
            lambda: store.messages.list(small, after=page(small_ids)).to_api(),
            lambda: floor.message_page(small, page(small_ids)),
            lambda: naive.message_page(small, page(small_ids)),
        ),
        (
            f"page of 20 messages, thread of {args.big:,}",
            lambda: store.messages.list(big, after=page(big_ids)).to_api(),
            lambda: floor.message_page(big, page(big_ids)),
            lambda: naive.message_page(big, page(big_ids)),
        ),
    ]
    print(f"SQLite, {os.cpu_count()} cores; median of {args.repeat} calls each, in microseconds")
    print(
        "| operation | threadstore | floor (raw sqlite3) | naive SQLModel | threadstore / floor | naive / threadstore |"
    )
    print("|---|---|---|---|---|---|")
    for name, ours, bare, orm in cases:
        mine, low, slow = (median_us(f, args.repeat) for f in (ours, bare, orm))
        print(f"| {name} | {mine:.0f} | {low:.0f} | {slow:.0f} | {mine / low:.2f} | {slow / mine:.1f} |", flush=True)


if __name__ == "__main__":
    main()
