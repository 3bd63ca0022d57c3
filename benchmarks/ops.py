"""threadstore's hot paths against the floor (the bare driver doing the same SQL and returning the
same API dicts) and against a naive SQLModel implementation (a session per call, ORM objects), in
one run: on SQLite (raw sqlite3, same pragmas and durability), then on PostgreSQL (psycopg) when
--postgres (or THREADSTORE_TEST_POSTGRES_URL) names a database.

    python -m benchmarks.ops [--repeat 2000] [--big 1000000] [--postgres URL] [--pin CPU]

Prints, for each backend and operation, the median time of each implementation and the ratios
threadstore/floor and naive/threadstore. PostgreSQL is measured in a schema of its own, dropped
afterwards.

--pin CPU (PostgreSQL on this machine; root, or the server's user): this process and every server
process serving its connections run on that one CPU while measured. Otherwise the scheduler
places each connection's server process on the client's CPU or on another, and on a virtual
machine a round trip across CPUs costs about 70 µs more (a wake-up across vCPUs), on the client's
CPU time too: a read of three round trips took 100 µs or 300 µs by where its server process
happened to run, 3x between two implementations sending the same statements.
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
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.floor import (
    INSERT_LG_METADATA,
    INSERT_LG_THREAD,
    INSERT_MESSAGE,
    Floor,
    PostgresFloor,
    connect_postgres,
    lg_metadata_rows,
)
from benchmarks.naive import Naive
from threadstore import Store
from threadstore.db import create_engine
from threadstore.ids import new_id, new_uuid

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOOL_STEP = {"type": "tool_calls", "tool_calls": []}
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
SECONDS = int(NOW.timestamp())
CONTENT = json.dumps([{"type": "text", "text": {"value": "benchmark message", "annotations": []}}])
MICROS = SECONDS * 1_000_000  # NOW as LangGraph stores times
KWARGS = {"input": {"messages": [{"role": "user", "content": "hello"}]}}
Case = tuple[str, Callable[[], Any], Callable[[], Any], Callable[[], Any]]


def fill_thread(floor: Floor, thread_id: str, count: int) -> list[str]:
    """Append `count` messages to a thread with raw inserts (setup, not measured); 50 share a second."""
    ids = []
    floor.execute("BEGIN")
    for start in range(0, count, 10_000):
        batch = []
        for index in range(start, min(count, start + 10_000)):
            ids.append(new_id("msg"))
            created = SECONDS - count // 50 + index // 50
            row = (ids[-1], created, thread_id, "completed", None, created, None, "user", CONTENT, None, None)
            batch.append((*row, "[]", "{}"))
        floor.execute_many(INSERT_MESSAGE, batch)
    floor.execute("COMMIT")
    return ids


def pending_runs(floor: Floor, count: int) -> None:
    """Add `count` pending LangGraph runs, each on a busy thread of its own, created a microsecond
    apart before NOW, so that claims take them oldest first (setup, not measured)."""
    threads, runs = [], []
    for index in range(count):
        created, thread_id = MICROS - count + index, new_uuid()
        threads.append((thread_id, created, created, "{}", "busy", None))
        run = (new_uuid(), thread_id, "agent", created, created, "pending", "{}", json.dumps(KWARGS), "enqueue")
        runs.append((*run, None, 0, None))
    floor.execute("BEGIN")
    floor.execute_many(INSERT_LG_THREAD, threads)
    floor.execute_many(floor.insert_lg_run, runs)
    floor.execute("COMMIT")


def search_corpus(floor: Floor, count: int, every: int) -> None:
    """Add the `count` newest threads (created after NOW), one in `every` tagged "wanted", the
    oldest of them too, with their rows of threadstore's metadata index: a search for the tag,
    newest first, fills its page of count // every threads with the last of them (a scan would
    read all `count`, whatever older threads lie beyond; the index reads the tagged ones)."""
    rows, entries = [], []
    for index in range(count):
        metadata = {"user": f"user-{index}", "tag": "wanted" if index % every == 0 else "other"}
        created, thread_id = MICROS + 1_000_000 + index, new_uuid()
        rows.append((thread_id, created, created, json.dumps(metadata), "idle", None))
        entries.extend(lg_metadata_rows(thread_id, metadata, created))  # as threadstore indexes them
    floor.execute("BEGIN")
    floor.execute_many(INSERT_LG_THREAD, rows)
    floor.execute_many(INSERT_LG_METADATA, entries)
    floor.execute("COMMIT")


def calls_per_operation(repeat: int, rounds: int = 10) -> int:
    """How many times `medians_us` calls each operation, warm-up calls included."""
    return rounds * (min(10, repeat) + max(1, repeat // rounds))


def medians_us(operations: list[Callable[[], Any]], repeat: int, rounds: int = 10) -> list[float]:
    """The median time of each operation in microseconds over `repeat` calls, taken in `rounds`
    rounds of one block of consecutive calls per operation (each after a few warm-up calls): a
    slow moment of the shared machine does not fall on one operation alone, and each block still
    runs with its caches warm."""
    samples: list[list[int]] = [[] for _ in operations]
    for _ in range(rounds):
        for operation, times in zip(operations, samples, strict=True):
            for _ in range(min(10, repeat)):
                operation()
            for _ in range(max(1, repeat // rounds)):
                started = time.perf_counter_ns()
                operation()
                times.append(time.perf_counter_ns() - started)
    return [statistics.median(times) / 1000 for times in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("--big", type=int, default=1_000_000, help="messages in the big thread")
    parser.add_argument("--postgres", default=os.environ.get("THREADSTORE_TEST_POSTGRES_URL"))
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL alone")
    parser.add_argument(
        "--pin", type=int, metavar="CPU", help="PostgreSQL: run this process and its server processes on this CPU"
    )
    args = parser.parse_args()
    path = str(Path(tempfile.mkdtemp()) / "bench.db")
    print(f"{os.cpu_count()} cores; median of {args.repeat} calls each, microseconds")
    if not args.no_sqlite:
        print("\nSQLite (WAL, synchronous=NORMAL); the floor is raw sqlite3")
        measure(f"sqlite:///{path}", lambda: Floor(path), args)
    if args.postgres:
        with postgres_schema(args.postgres) as url:
            print("\nPostgreSQL (local server, READ COMMITTED); the floor is psycopg")
            measure(url, lambda: PostgresFloor(url), args)


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str]:
    """A URL whose connections work in a new schema, dropped on the way out; they carry the
    schema's name as their application name (what `pin` finds them by)."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        url = sa.make_url(base_url).update_query_dict(
            {"options": f"-csearch_path={schema}", "application_name": schema}
        )
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def pin(url: str, cpu: int) -> None:
    """Run this process (every thread of it) and the server processes of its connections to
    `url` (found by their application name, see postgres_schema) on `cpu` alone; a connection
    opened later is not pinned.

    Raises:
        SystemExit: the server is not on this machine, or this user may not move its processes.
    """
    name = sa.make_url(url).query["application_name"]
    with connect_postgres(url, autocommit=True) as connection:
        backends = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid != pg_backend_pid()", (name,)
        ).fetchall()
    try:
        for (pid,) in backends:
            os.sched_setaffinity(pid, {cpu})
        for thread in os.listdir("/proc/self/task"):
            os.sched_setaffinity(int(thread), {cpu})
    except (PermissionError, ProcessLookupError) as error:
        raise SystemExit(
            f"--pin: cannot move the server's processes ({error}): run as root on the server's machine"
        ) from error
    print(f"(this process and its {len(backends)} server processes on CPU {cpu})")


def measure(url: str, make_floor: Callable[[], Floor], args: argparse.Namespace) -> None:
    """Set up the database at `url`, then print the table of every operation on it."""
    # Without events: the floor and the naive implementation write none. What the events cost is
    # measured by benchmarks.events.
    store = Store(url, clock=lambda: NOW, migrate_on_open=True, events=False)
    floor = make_floor()
    assistant = store.assistants.create(model="gpt-4o", instructions="be brief")
    writes, lifecycle, small, big, imports = (store.threads.create().id for _ in range(5))
    small_ids = fill_thread(floor, small, 1000)
    big_ids = fill_thread(floor, big, args.big)
    run_id = store.runs.create(store.threads.create().id, assistant_id=assistant.id).id
    stepping = store.runs.create(store.threads.create().id, assistant_id=assistant.id).id
    store.runs.start(stepping)
    claims = 3 * calls_per_operation(args.repeat) + 10  # every implementation claims in every call
    with store.transaction() as tx:  # a queued run on its own thread for every claim measured
        for _ in range(claims):
            tx.runs.create(tx.threads.create().id, assistant_id=assistant.id)
    naive = Naive(url)
    assistant_row = floor.execute("SELECT * FROM threadstore_assistants WHERE id = ?", (assistant.id,)).fetchone()

    def page(ids: list[str]) -> str:
        return ids[len(ids) // 2]

    cases: list[Case] = [
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
        *langgraph_cases(store, floor, naive, claims),
    ]
    floor.analyze()
    pinned = args.pin is not None and url.startswith("postgresql")
    if pinned:
        naive.engine.connect().close()  # its pool's connection, opened now to be pinned
        pin(url, args.pin)
    print("| operation | threadstore / floor | naive / threadstore | threadstore | floor | naive SQLModel |")
    print("|---|---|---|---|---|---|")
    pages = {}
    # Every operation of every implementation in each round: a slow spell of the shared machine
    # then falls on all of them, not on one row or one column of the table.
    medians = medians_us([implementation for case in cases for implementation in case[1:]], args.repeat)
    for index, (name, *_) in enumerate(cases):
        mine, low, slow = medians[3 * index : 3 * index + 3]
        pages[name] = mine
        print(f"| {name} | {mine / low:.2f} | {slow / mine:.1f} | {mine:.0f} | {low:.0f} | {slow:.0f} |", flush=True)
    if pinned:  # the naive implementation's pool may have opened a connection since
        pin(url, args.pin)
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
    store.close()
    naive.engine.dispose()
    floor.db.close()


def langgraph_cases(store: Store, floor: Floor, naive: Naive, claims: int) -> list[Case]:
    """Set up the LangGraph objects (`claims` pending runs among them) and return their operations."""
    threads, runs = store.langgraph.threads, store.langgraph.runs
    listed = threads.create().thread_id  # a thread with 20 finished runs
    for _ in range(20):
        runs.create(listed, assistant_id="agent", kwargs=KWARGS)
        claimed = runs.claim_next()
        assert claimed is not None
        runs.finish(claimed.run_id, attempt=claimed.attempt, status="success")
    beating = threads.create().thread_id
    runs.create(beating, assistant_id="agent", kwargs=KWARGS)
    held = runs.claim_next()  # the only pending run yet: it stays running, for the heartbeats
    assert held is not None
    queue = threads.create().thread_id  # where runs are created, each enqueued behind the last
    pending_runs(floor, claims)
    search_corpus(floor, 1000, every=100)
    wanted = {"tag": "wanted"}

    def claim_and_finish() -> dict[str, Any]:
        run = runs.claim_next()
        assert run is not None, "no pending run left to claim"
        return runs.finish(run.run_id, attempt=run.attempt, status="success").to_api()

    return [
        (
            "LangGraph thread create",
            lambda: threads.create(metadata={"user": "42"}).to_api(),
            lambda: floor.lg_create_thread({"user": "42"}, MICROS),
            lambda: naive.lg_create_thread({"user": "42"}, MICROS),
        ),
        (
            "LangGraph run create (enqueued on a busy thread)",
            lambda: runs.create(queue, assistant_id="agent", kwargs=KWARGS).to_api(),
            lambda: floor.lg_create_run(queue, KWARGS, MICROS),
            lambda: naive.lg_create_run(queue, KWARGS, MICROS),
        ),
        (
            "LangGraph claim_next + finish",
            claim_and_finish,
            lambda: floor.lg_claim_and_finish(MICROS),
            lambda: naive.lg_claim_and_finish(MICROS),
        ),
        (
            "LangGraph heartbeat",
            lambda: runs.heartbeat(held.run_id, attempt=held.attempt).to_api(),
            lambda: floor.lg_heartbeat(held.run_id, held.attempt, MICROS),
            lambda: naive.lg_heartbeat(held.run_id, held.attempt, MICROS),
        ),
        (
            "LangGraph get run",
            lambda: runs.get(claimed.run_id).to_api(),
            lambda: floor.lg_get_run(claimed.run_id),
            lambda: naive.lg_get_run(claimed.run_id),
        ),
        (
            "LangGraph threads.search by metadata, 10 of 1,000 threads match",
            lambda: [thread.to_api() for thread in threads.search(metadata=wanted)],
            lambda: floor.lg_search_threads("tag", "wanted"),
            lambda: naive.lg_search_threads("tag", "wanted"),
        ),
        (
            "LangGraph runs list, 10 of a thread's 20",
            lambda: [run.to_api() for run in runs.list(listed)],
            lambda: floor.lg_list_runs(listed),
            lambda: naive.lg_list_runs(listed),
        ),
    ]


def bulk(store: Store, floor: Floor, naive: Naive, thread: str, batches: int = 25, size: int = 1000) -> None:
    """Messages per second imported in batches of `size`, median over `batches` batches."""
    texts = [f"imported message {i}" for i in range(size)]
    batch = [{"role": "user", "content": text} for text in texts]
    times = medians_us(
        [
            lambda: store.messages.create_many(thread, batch),
            lambda: floor.import_messages(thread, texts, SECONDS),
            lambda: naive.import_messages(thread, texts, SECONDS),
        ],
        batches,
        rounds=5,
    )
    mine, low, slow = (size / (median / 1e6) for median in times)
    print(
        f"| bulk import, messages per second (batches of {size:,}) | {low / mine:.2f} | {mine / slow:.1f} "
        f"| {mine:,.0f}/s | {low:,.0f}/s | {slow:,.0f}/s |",
        flush=True,
    )


if __name__ == "__main__":
    main()
