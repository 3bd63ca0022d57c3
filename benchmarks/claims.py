"""Claims per second for 1, 2, 4 and 8 worker processes, threadstore against a raw-SQL claim loop
doing the same SQL through the bare driver (sqlite3 with threadstore's pragmas, or psycopg),
measured in the same run. Prints medians of several repetitions and the ratio.

    python -m benchmarks.claims [--runs 1000] [--repeat 3] [--postgres URL]

PostgreSQL is measured when --postgres (or THREADSTORE_TEST_POSTGRES_URL) names a database; the
benchmark works in a schema of its own and drops it afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.floor import connect_postgres
from threadstore import Store
from threadstore.db import BUSY_TIMEOUT_MS, create_engine
from threadstore.schema import metadata

PROCESSES = (1, 2, 4, 8)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
NOW_SECONDS = int(NOW.timestamp())
CLAIM_SQL = (
    "UPDATE threadstore_runs SET status = 'in_progress', started_at = coalesce(started_at, {p}) "
    "WHERE id = (SELECT id FROM threadstore_runs WHERE status = 'queued' AND expires_at > {p} "
    "ORDER BY created_at, id LIMIT 1{lock}) AND status = 'queued' RETURNING *"
)


def clock() -> datetime:
    return NOW


# --- the two claim loops ------------------------------------------------------------------------


def threadstore_loop(url: str) -> Callable[[], int]:
    store = Store(url, clock=clock, migrate_on_open=False)

    def claim_all() -> int:
        claimed = 0
        while store.runs.claim_next() is not None:
            claimed += 1
        return claimed

    return claim_all


def raw_sqlite_loop(path: str) -> Callable[[], int]:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", f"busy_timeout={BUSY_TIMEOUT_MS}", "synchronous=NORMAL"):
        connection.execute(f"PRAGMA {pragma}")
    sql = CLAIM_SQL.format(p="?", lock="")

    def claim_all() -> int:
        claimed = 0
        while True:
            connection.execute("BEGIN IMMEDIATE")
            row = connection.execute(sql, (NOW_SECONDS, NOW_SECONDS)).fetchone()
            connection.execute("COMMIT")
            if row is None:
                return claimed
            claimed += 1

    return claim_all


def raw_postgres_loop(url: str) -> Callable[[], int]:
    connection = connect_postgres(url)
    sql = CLAIM_SQL.format(p="%s", lock=" FOR UPDATE SKIP LOCKED")

    def claim_all() -> int:
        claimed = 0
        while True:
            with connection.transaction():
                row = connection.execute(sql, (NOW_SECONDS, NOW_SECONDS)).fetchone()
            if row is None:
                return claimed
            claimed += 1

    return claim_all


# --- measuring ------------------------------------------------------------------------------------


def _worker(make: Callable[[str], Callable[[], int]], target: str, ready: Any, go: Any, done: Any) -> None:
    claim_all = make(target)
    ready.release()
    go.wait()
    done.put(claim_all())


def claims_per_second(make: Callable[[str], Callable[[], int]], target: str, processes: int, expected: int) -> float:
    context = multiprocessing.get_context("fork")
    ready, go, done = context.Semaphore(0), context.Event(), context.Queue()
    workers = [context.Process(target=_worker, args=(make, target, ready, go, done)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    claimed = sum(done.get(timeout=600) for _ in workers)
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    assert claimed == expected, f"{claimed} claims of {expected} runs"
    return claimed / elapsed


def fill(url: str, runs: int) -> None:
    with Store(url, clock=clock, migrate_on_open=True) as store:
        assistant = store.assistants.create(model="gpt-4o").id
        with store.transaction() as tx:
            for _ in range(runs):
                tx.runs.create(tx.threads.create().id, assistant_id=assistant)


def sqlite_case(workdir: Path, runs: int) -> tuple[Callable[[], str], Callable[[str], str], Callable[[str], str]]:
    template = workdir / "template.db"
    fill(f"sqlite:///{template}", runs)
    counter = iter(range(10**6))

    def fresh() -> str:
        path = workdir / f"run{next(counter)}.db"
        shutil.copy(template, path)
        return str(path)

    return fresh, lambda path: f"sqlite:///{path}", lambda path: path


def postgres_case(base_url: str, runs: int) -> tuple[Callable[[], str], Callable[[str], str], Callable[[str], str]]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base_url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = sa.make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    text = url.render_as_string(hide_password=False)
    tables = ", ".join(table.name for table in metadata.sorted_tables)

    def fresh() -> str:
        engine = create_engine(text)
        with engine.begin() as connection:
            if sa.inspect(connection).has_table("threadstore_runs"):
                connection.exec_driver_sql(f"TRUNCATE {tables} CASCADE")
        engine.dispose()
        fill(text, runs)
        return text

    fresh.schema = schema  # type: ignore[attr-defined]
    fresh.admin = admin  # type: ignore[attr-defined]
    return fresh, lambda target: target, lambda target: target


def measure(name: str, case: Any, raw: Callable[[str], Callable[[], int]], runs: int, repeat: int) -> list[str]:
    fresh, ours, theirs = case
    lines = []
    for processes in PROCESSES:
        store_rates, raw_rates = [], []
        for _ in range(repeat):
            store_rates.append(claims_per_second(threadstore_loop, ours(fresh()), processes, runs))
            raw_rates.append(claims_per_second(raw, theirs(fresh()), processes, runs))
        mine, floor = statistics.median(store_rates), statistics.median(raw_rates)
        lines.append(f"| {name} | {processes} | {mine:,.0f} | {floor:,.0f} | {mine / floor:.2f} |")
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=os.environ.get("THREADSTORE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"{args.runs} queued runs claimed by N processes; median of {args.repeat}; {os.cpu_count()} cores")
    print("| backend | processes | threadstore claims/s | raw SQL claims/s | threadstore / raw |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        measure("SQLite", sqlite_case(Path(workdir), args.runs), raw_sqlite_loop, args.runs, args.repeat)
    if args.postgres:
        case = postgres_case(args.postgres, args.runs)
        try:
            measure("PostgreSQL", case, raw_postgres_loop, args.runs, args.repeat)
        finally:
            with case[0].admin.begin() as connection:
                connection.exec_driver_sql(f"DROP SCHEMA {case[0].schema} CASCADE")


if __name__ == "__main__":
    main()
