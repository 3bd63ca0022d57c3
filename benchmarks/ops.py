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
import subprocess
import sys
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
TOOL_STEP = {"type": "tool_calls", "tool_calls": []}
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
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
    writes, lifecycle, small, big, imports = (store.threads.create().id for _ in range(5))
    small_ids = fill_thread(path, small, 1000)
    big_ids = fill_thread(path, big, args.big)
    run_id = store.runs.create(store.threads.create().id, assistant_id=assistant.id).id
    stepping = store.runs.create(store.threads.create().id, assistant_id=assistant.id).id
    store.runs.start(stepping)
    with store.transaction() as tx:  # a queued run on its own thread for every claim measured
        for _ in range(3 * (args.repeat + 50)):
            tx.runs.create(tx.threads.create().id, assistant_id=assistant.id)
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
            "create a step with details, complete it",
            lambda: store.run_steps.complete(
                store.run_steps.create(stepping, step_details=TOOL_STEP).id, usage=USAGE
            ).to_api(),
            lambda: floor.step_lifecycle(stepping, SECONDS),
            lambda: naive.step_lifecycle(stepping, SECONDS),
        ),
        (
            "claim_next",
            lambda: store.runs.claim_next(),
            lambda: floor.claim_next(SECONDS),
            lambda: naive.claim_next(SECONDS),
        ),
        (
            f"page of 20 messages, thread of {args.big:,}",
            lambda: store.messages.list(big, after=page(big_ids)).to_api(),
            lambda: floor.message_page(big, page(big_ids)),
            lambda: naive.message_page(big, page(big_ids)),
        ),
    ]
    print(f"SQLite (WAL, synchronous=NORMAL), {os.cpu_count()} cores; median of {args.repeat} calls each, microseconds")
    print(
        "| operation | threadstore | floor (raw sqlite3) | naive SQLModel | threadstore / floor | naive / threadstore |"
    )
    print("|---|---|---|---|---|---|")
    pages = {}
    for name, ours, bare, orm in cases:
        mine, low, slow = (median_us(f, args.repeat) for f in (ours, bare, orm))
        pages[name] = mine
        print(f"| {name} | {mine:.0f} | {low:.0f} | {slow:.0f} | {mine / low:.2f} | {slow / mine:.1f} |", flush=True)
    bulk(store, floor, naive, imports)
    small_page, big_page = (
        pages["page of 20 messages, thread of 1,000"],
        pages[f"page of 20 messages, thread of {args.big:,}"],
    )
    print(f"\npage at {args.big:,} messages / page at 1,000: {big_page / small_page:.2f}")
    walk = subprocess.run(
        [sys.executable, "-m", "benchmarks.walk", url, big], capture_output=True, text=True, check=True
    )
    memory = json.loads(walk.stdout)
    print(
        f"walking all {memory['messages']:,} messages, 100 a page: resident memory {memory['start_mib']:.0f} MiB at "
        f"the start, {memory['end_mib']:.0f} MiB at the end, peak {memory['peak_mib']:.0f} MiB"
    )


def bulk(store: Store, floor: Floor, naive: Naive, thread: str, batches: int = 9, size: int = 1000) -> None:
    """Messages per second imported in batches of `size`, median over `batches` batches."""
    texts = [f"imported message {i}" for i in range(size)]
    batch = [{"role": "user", "content": text} for text in texts]
    rates = []
    for run in (
        lambda: store.messages.create_many(thread, batch),
        lambda: floor.import_messages(thread, texts, SECONDS),
        lambda: naive.import_messages(thread, texts, SECONDS),
    ):
        rates.append(size / (median_us(run, batches) / 1e6))
    mine, low, slow = rates
    print(
        f"| bulk import, messages per second (batches of {size:,}) | {mine:,.0f}/s | {low:,.0f}/s | {slow:,.0f}/s "
        f"| {low / mine:.2f} | {mine / slow:.1f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
