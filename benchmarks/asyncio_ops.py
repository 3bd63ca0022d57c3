"""AsyncStore under an asyncio server's load, against the floor and against the sync Store.

PostgreSQL (when --postgres or THREADSTORE_TEST_POSTGRES_URL names a database): `--tasks`
concurrent tasks each repeat a run lifecycle (create a run on a thread of its own, claim a run
with claim_next, complete it) and the first page of a thread's messages, over pools of
`--pool` connections, in three implementations measured in the same rounds:

- AsyncStore (greenlets over psycopg's async connections);
- the floor: bare `psycopg.AsyncConnection`s from `psycopg_pool.AsyncConnectionPool`, sending
  the SQL threadstore sends and building the same API dicts;
- the sync Store called through `asyncio.to_thread` (the default executor).

All three write no events (the floor writes none; benchmarks.events measures what they cost) and
have pools of the same size. The tasks run against the local server, where nothing waits on the
network, then through benchmarks.delay_proxy once for each `--delay-ms` (default 1), which it
adds in each direction as a database in another rack would; there a server's concurrency is
what counts, and `asyncio.to_thread` has only the default executor's min(32, cores + 4) threads.
Each table's title gives the median round trip of a SELECT 1 on that network.

Meanwhile a probe task sleeps 1 ms in a loop and records how late it wakes: the event loop's lag.
The tasks repeat their work with no pause, so the loop does all the work it can: its lag is then
the queue of every task's steps in one turn, whoever's they are. A second table paces the same
tasks to a share (`--pace`) of AsyncStore's rate, as a server's requests come, and gives the lag
of a loop that is not saturated.
The table also gives the CPU time the benchmark's process spent per iteration (all its threads):
where every implementation gets the same share of a busy machine, throughput follows it.

SQLite: the median latency of single operations, AsyncStore (its worker thread, one hand-off per call)
against the sync Store, then what a hand-off to a thread and back costs by itself.

--pin CPU (SQLite): every thread of this process (the event loop's and AsyncStore's worker) runs
on that one CPU. On a virtual machine an idle vCPU takes tens of microseconds to wake, and a
hand-off to a worker the scheduler placed on the other vCPU pays that twice per call, which the
sync Store never does: unpinned, the ratios measure the machine's wake-ups more than the code.
Pinned, both stores run under the same placement (as benchmarks.ops --pin does for PostgreSQL).
The PostgreSQL part runs where it ran before (not pinned).

    python -m benchmarks.asyncio_ops [--repeat 2000] [--pin CPU] [--tasks 100] [--pool 20] [--iterations 20]
        [--rounds 7] [--pace 0.5] [--paced-iterations 5] [--postgres URL] [--delay-ms 1 [5 ...]]

PostgreSQL is measured in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from benchmarks.floor import message_api, run_api
from benchmarks.ops import postgres_schema
from threadstore import AsyncStore, Store
from threadstore.ids import new_id
from threadstore.runners import ThreadRunner

PAGE_MESSAGES = 50  # messages in the paged thread: more than one page of 20

# The statements threadstore sends on PostgreSQL for these calls (as psycopg receives them,
# captured from a sync Store); the floor sends them unchanged, so the server does the same work.
LOCK_THREAD = (
    "SELECT threadstore_threads.id \nFROM threadstore_threads \nWHERE threadstore_threads.id = %(id)s::VARCHAR"
    " FOR UPDATE"
)
ACTIVE_RUN = (
    "SELECT threadstore_runs.id \nFROM threadstore_runs \nWHERE threadstore_runs.thread_id = %(thread_id)s::VARCHAR"
    " AND threadstore_runs.status IN "
    "('cancelling', 'in_progress', 'queued', 'requires_action')"
)
ASSISTANT = (
    "SELECT threadstore_assistants.id, threadstore_assistants.created_at, threadstore_assistants.name,"
    " threadstore_assistants.description, threadstore_assistants.model,"
    " threadstore_assistants.instructions, threadstore_assistants.tools, threadstore_assistants.tool_resources,"
    " threadstore_assistants.metadata,"
    " threadstore_assistants.temperature, threadstore_assistants.top_p, threadstore_assistants.response_format,"
    " threadstore_assistants.deleted_at \n"
    "FROM threadstore_assistants \nWHERE threadstore_assistants.id = %(id)s::VARCHAR AND"
    " threadstore_assistants.deleted_at IS NULL"
)
RUN_COLUMNS = (
    "id", "created_at", "thread_id", "assistant_id", "status", "required_action", "last_error_code",
    "last_error_message", "expires_at", "started_at", "cancelled_at", "failed_at", "completed_at",
    "incomplete_reason", "model", "instructions", "tools", "metadata", "usage_prompt_tokens",
    "usage_completion_tokens", "usage_total_tokens", "temperature", "top_p", "max_prompt_tokens",
    "max_completion_tokens", "truncation_strategy", "response_format", "tool_choice", "parallel_tool_calls",
)  # fmt: skip
RUN_CASTS = dict.fromkeys(
    ("required_action", "tools", "metadata", "truncation_strategy", "response_format", "tool_choice"), "JSONB"
)
RUN_CASTS |= dict.fromkeys(("temperature", "top_p", "parallel_tool_calls"), "")  # sent without a cast
RUN_CASTS |= {name: "BIGINT" for name in RUN_COLUMNS if name.endswith("_at")}
RUN_CASTS |= {name: "INTEGER" for name in RUN_COLUMNS if name.startswith(("usage_", "max_"))}


def _placeholder(name: str) -> str:
    cast = RUN_CASTS.get(name, "VARCHAR")
    return f"%({name})s::{cast}" if cast else f"%({name})s"


INSERT_RUN = (
    f"INSERT INTO threadstore_runs ({', '.join(RUN_COLUMNS)})"
    f" VALUES ({', '.join(_placeholder(name) for name in RUN_COLUMNS)})"
)
RETURNING_RUN = " RETURNING " + ", ".join(f"threadstore_runs.{name}" for name in RUN_COLUMNS)
CLAIM = (
    "UPDATE threadstore_runs SET status=%(status)s::VARCHAR, started_at=coalesce(threadstore_runs.started_at,"
    " %(now)s::BIGINT)"
    " WHERE threadstore_runs.status IN ('queued') AND threadstore_runs.id = (SELECT threadstore_runs.id \nFROM"
    " threadstore_runs \nWHERE threadstore_runs.status ="
    " %(status_1)s::VARCHAR AND threadstore_runs.expires_at > %(now)s::BIGINT ORDER BY threadstore_runs.created_at,"
    " threadstore_runs.id \n"
    " LIMIT %(param_1)s::INTEGER FOR UPDATE SKIP LOCKED)" + RETURNING_RUN
)
COMPLETE = (
    "UPDATE threadstore_runs SET status=%(status)s::VARCHAR, expires_at=%(expires_at)s::BIGINT,"
    " completed_at=%(now)s::BIGINT"
    " WHERE threadstore_runs.id = %(object_id)s::VARCHAR AND threadstore_runs.status IN ('cancelling', 'in_progress')"
    + RETURNING_RUN
)
COMPLETE_STEPS = (
    "UPDATE threadstore_run_steps SET status=%(status)s::VARCHAR, completed_at=%(now)s::BIGINT WHERE"
    " threadstore_run_steps.status IN"
    " ('in_progress') AND threadstore_run_steps.run_id = %(run_id)s::VARCHAR RETURNING threadstore_run_steps.id"
)
COMPLETE_MESSAGES = (
    "UPDATE threadstore_messages SET status=%(status)s::VARCHAR, completed_at=%(now)s::BIGINT WHERE"
    " threadstore_messages.status IN"
    " ('in_progress') AND threadstore_messages.run_id = %(run_id)s::VARCHAR RETURNING threadstore_messages.id"
)
MESSAGE_PAGE = (
    "SELECT threadstore_messages.id, threadstore_messages.created_at, threadstore_messages.thread_id,"
    " threadstore_messages.status, threadstore_messages.incomplete_reason,"
    " threadstore_messages.completed_at, threadstore_messages.incomplete_at, threadstore_messages.role,"
    " threadstore_messages.content, threadstore_messages.assistant_id,"
    " threadstore_messages.run_id, threadstore_messages.attachments, threadstore_messages.metadata \nFROM"
    " threadstore_messages \nWHERE threadstore_messages.thread_id ="
    " %(scope_thread_id)s::VARCHAR ORDER BY threadstore_messages.created_at DESC, threadstore_messages.id DESC \n"
    " LIMIT %(limit)s::INTEGER"
)


class Implementation(Protocol):
    """The four calls of the PostgreSQL workload, each returning the API dict."""

    async def create_run(self, thread_id: str) -> dict[str, Any]: ...
    async def claim(self) -> dict[str, Any] | None: ...
    async def complete(self, run_id: str) -> dict[str, Any]: ...
    async def page(self, thread_id: str) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class OnAsyncStore:
    """The workload on AsyncStore."""

    def __init__(self, url: str, pool: int, assistant_id: str) -> None:
        self.store = AsyncStore(url, engine_options={"pool_size": pool, "max_overflow": 0}, events=False)
        self.assistant_id = assistant_id

    async def create_run(self, thread_id: str) -> dict[str, Any]:
        return (await self.store.runs.create(thread_id, assistant_id=self.assistant_id)).to_api()

    async def claim(self) -> dict[str, Any] | None:
        run = await self.store.runs.claim_next()
        return None if run is None else run.to_api()

    async def complete(self, run_id: str) -> dict[str, Any]:
        return (await self.store.runs.complete(run_id)).to_api()

    async def page(self, thread_id: str) -> dict[str, Any]:
        return (await self.store.messages.list(thread_id)).to_api()

    async def close(self) -> None:
        await self.store.close()


class OnThreads:
    """The workload on the sync Store, each call in a thread of asyncio's default executor."""

    def __init__(self, url: str, pool: int, assistant_id: str) -> None:
        self.store = Store(url, engine_options={"pool_size": pool, "max_overflow": 0}, events=False)
        self.assistant_id = assistant_id

    async def create_run(self, thread_id: str) -> dict[str, Any]:
        run = await asyncio.to_thread(self.store.runs.create, thread_id, assistant_id=self.assistant_id)
        return run.to_api()

    async def claim(self) -> dict[str, Any] | None:
        run = await asyncio.to_thread(self.store.runs.claim_next)
        return None if run is None else run.to_api()

    async def complete(self, run_id: str) -> dict[str, Any]:
        return (await asyncio.to_thread(self.store.runs.complete, run_id)).to_api()

    async def page(self, thread_id: str) -> dict[str, Any]:
        return (await asyncio.to_thread(self.store.messages.list, thread_id)).to_api()

    async def close(self) -> None:
        self.store.close()


class AsyncFloor:
    """The floor: psycopg's async connections from psycopg_pool, threadstore's SQL, the same dicts."""

    def __init__(self, url: str, pool: int, assistant_id: str) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.pool = AsyncConnectionPool(kwargs=connect_kwargs(url), min_size=pool, open=False)
        self.assistant_id = assistant_id

    async def open(self) -> None:
        await self.pool.open(wait=True)

    async def create_run(self, thread_id: str) -> dict[str, Any]:
        async with self.pool.connection() as connection:  # commits on the way out, as a unit of work
            if await (await connection.execute(LOCK_THREAD, {"id": thread_id})).fetchone() is None:
                raise LookupError(thread_id)
            if await (await connection.execute(ACTIVE_RUN, {"thread_id": thread_id})).fetchone() is not None:
                raise RuntimeError("the thread has an active run")
            cursor = await connection.execute(ASSISTANT, {"id": self.assistant_id})
            names = [column.name for column in cursor.description or ()]
            assistant = dict(zip(names, await cursor.fetchone() or (), strict=True))
            row = new_run(thread_id, assistant, int(time.time()))
            await connection.execute(INSERT_RUN, insert_params(row))
        return run_api(row, _decoded)

    async def claim(self) -> dict[str, Any] | None:
        params = {"status": "in_progress", "status_1": "queued", "param_1": 1, "now": int(time.time())}
        async with self.pool.connection() as connection:
            values = await (await connection.execute(CLAIM, params)).fetchone()
        return None if values is None else run_api(dict(zip(RUN_COLUMNS, values, strict=True)), _decoded)

    async def complete(self, run_id: str) -> dict[str, Any]:
        now = int(time.time())
        async with self.pool.connection() as connection:
            params = {"status": "completed", "expires_at": None, "object_id": run_id, "now": now}
            values = await (await connection.execute(COMPLETE, params)).fetchone()
            if values is None:
                raise RuntimeError(f"{run_id} is not in progress")
            others = {"status": "completed", "run_id": run_id, "now": now}
            await (await connection.execute(COMPLETE_STEPS, others)).fetchall()
            await (await connection.execute(COMPLETE_MESSAGES, others)).fetchall()
        return run_api(dict(zip(RUN_COLUMNS, values, strict=True)), _decoded)

    async def page(self, thread_id: str) -> dict[str, Any]:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(MESSAGE_PAGE, {"scope_thread_id": thread_id, "limit": 21})
            rows = await cursor.fetchall()
        data = [message_api(row, _decoded) for row in rows[:20]]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(rows) > 20,
        }

    async def close(self) -> None:
        await self.pool.close()


def connect_kwargs(url: str) -> dict[str, Any]:
    """psycopg's connection arguments for the SQLAlchemy URL `url`."""
    parsed = sa.make_url(url)
    kwargs: dict[str, Any] = {"host": parsed.host, "port": parsed.port, "user": parsed.username}
    kwargs |= {"password": parsed.password, "dbname": parsed.database, "options": parsed.query.get("options")}
    return {name: value for name, value in kwargs.items() if value}


def round_trip_ms(url: str, repeat: int = 200) -> float:
    """The median time of a `SELECT 1` on a connection to `url`, in milliseconds."""
    import psycopg

    times = []
    with psycopg.connect(**connect_kwargs(url), autocommit=True) as connection:
        for _ in range(repeat):
            started = time.perf_counter()
            connection.execute("SELECT 1").fetchone()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _decoded(value: Any) -> Any:
    return value  # psycopg has decoded JSONB already


JSON_RUN_COLUMNS = [name for name, cast in RUN_CASTS.items() if cast == "JSONB"]


def new_run(thread_id: str, assistant: dict[str, Any], now: int) -> dict[str, Any]:
    """The run threadstore inserts for `assistant` with no overrides, as Python values."""
    row: dict[str, Any] = dict.fromkeys(RUN_COLUMNS)
    row |= {"id": new_id("run"), "created_at": now, "thread_id": thread_id, "assistant_id": assistant["id"]}
    row |= {"status": "queued", "expires_at": now + 600, "model": assistant["model"]}
    row |= {"instructions": assistant["instructions"] or "", "tools": assistant["tools"], "metadata": {}}
    row |= {"truncation_strategy": {"type": "auto", "last_messages": None}, "response_format": "auto"}
    row |= {"tool_choice": "auto", "parallel_tool_calls": True}
    return row


def insert_params(row: dict[str, Any]) -> dict[str, Any]:
    """`row` as INSERT_RUN's parameters: JSONB columns sent as JSON text, as threadstore sends them."""
    return row | {name: None if row[name] is None else json.dumps(row[name]) for name in JSON_RUN_COLUMNS}


# --- PostgreSQL: throughput of concurrent tasks ---------------------------------------------------


async def worker(
    implementation: Implementation, free: deque[str], paged: str, iterations: int, period: float = 0.0
) -> None:
    """Repeat the workload: a run on a free thread, a claim, its completion, a page of messages;
    with a `period`, start an iteration every `period` seconds (or at once when running late).

    The claimed run may be another task's: its thread is free again once that run is complete.
    """
    due = time.perf_counter()
    for _ in range(iterations):
        await implementation.create_run(free.popleft())
        claimed = await implementation.claim()
        if claimed is not None:
            await implementation.complete(claimed["id"])
            free.append(claimed["thread_id"])
        await implementation.page(paged)
        if period:
            due += period
            await asyncio.sleep(max(0.0, due - time.perf_counter()))


async def lag_probe(stop: asyncio.Event, lags: list[float]) -> None:
    """Sleep 1 ms at a time until `stop`; record how late each wake-up came, in milliseconds."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - started) * 1000 - 1)


async def one_round(
    implementation: Implementation,
    free: deque[str],
    paged: str,
    tasks: int,
    iterations: int,
    lags: list[float],
    offered: float = 0.0,
) -> tuple[float, float]:
    """Iterations per second of `tasks` concurrent workers, with the lag probe running, and the
    CPU time this process spent per iteration (every thread's) in microseconds. With `offered`
    (iterations per second, all tasks together), the workers are paced to it, their starts spread
    over one period: an open load below what the loop can carry, as a server's requests come."""
    period = tasks / offered if offered else 0.0

    async def paced(index: int) -> None:
        await asyncio.sleep(period * index / tasks)
        await worker(implementation, free, paged, iterations, period)

    stop = asyncio.Event()
    probe = asyncio.create_task(lag_probe(stop, lags))
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(paced(index) for index in range(tasks)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    stop.set()
    await probe
    return tasks * iterations / elapsed, cpu * 1e6 / (tasks * iterations)


def drain(store: Store, free: deque[str]) -> None:
    """Complete the runs a round left queued (a claim that found none free), freeing their threads."""
    while (run := store.runs.claim_next()) is not None:
        store.runs.complete(run.id)
        free.append(run.thread_id)


async def postgres_throughput(url: str, args: argparse.Namespace, network: str) -> None:
    """Print the throughput table and the loop's lag for the three implementations, whose
    connections reach the database at `url` over `network` (said in the table's title)."""
    network += f" (a SELECT 1 takes {round_trip_ms(url):.2f} ms, median)"
    setup = Store(url, migrate_on_open=True, events=False)
    assistant = setup.assistants.create(model="gpt-4o", instructions="be brief").id
    paged = setup.threads.create().id
    setup.messages.create_many(paged, [{"role": "user", "content": f"message {i}"} for i in range(PAGE_MESSAGES)])
    free = deque(setup.threads.create().id for _ in range(3 * args.tasks))
    floor = AsyncFloor(url, args.pool, assistant)
    await floor.open()
    implementations: dict[str, Implementation] = {
        "AsyncStore": OnAsyncStore(url, args.pool, assistant),
        "floor (psycopg AsyncConnectionPool)": floor,
        "Store via asyncio.to_thread": OnThreads(url, args.pool, assistant),
    }
    rates: dict[str, list[float]] = {name: [] for name in implementations}
    cpus: dict[str, list[float]] = {name: [] for name in implementations}
    lags: dict[str, list[float]] = {name: [] for name in implementations}
    for implementation in implementations.values():  # warm-up: connections opened, statements prepared
        await one_round(implementation, free, paged, args.tasks, 2, [])
        drain(setup, free)
    for _ in range(args.rounds):
        for name, implementation in implementations.items():
            rate, cpu = await one_round(implementation, free, paged, args.tasks, args.iterations, lags[name])
            rates[name].append(rate)
            cpus[name].append(cpu)
            drain(setup, free)
    print_throughput(rates, cpus, lags, args, network)
    if args.pace:
        # The same load, paced to a share of what AsyncStore carried: is the loop's lag its own
        # steps, or a saturated loop's queue (the table above)?
        offered = args.pace * statistics.median(rates["AsyncStore"])
        paced_lags: dict[str, list[float]] = {name: [] for name in implementations}
        paced_rates: dict[str, list[float]] = {name: [] for name in implementations}
        for _ in range(args.rounds):
            for name, implementation in implementations.items():
                rate, _cpu = await one_round(
                    implementation, free, paged, args.tasks, args.paced_iterations, paced_lags[name], offered
                )
                paced_rates[name].append(rate)
                drain(setup, free)
        print_paced(paced_rates, paced_lags, offered, args)
    for implementation in implementations.values():
        await implementation.close()
    setup.close()


def print_throughput(
    rates: dict[str, list[float]],
    cpus: dict[str, list[float]],
    lags: dict[str, list[float]],
    args: argparse.Namespace,
    network: str,
) -> None:
    """The table: median iterations per second of each implementation, its ratios, the client's CPU
    time per iteration (which says whether the client or the server is the bottleneck), the loop's lag."""
    median = {name: statistics.median(values) for name, values in rates.items()}
    mine, floor, threads = median.values()
    print(
        f"\nPostgreSQL, {network}: {args.tasks} tasks, pools of {args.pool} connections (all three);"
        " an iteration is a run lifecycle"
        f" (create, claim_next, complete) and a page of 20 messages; median of {args.rounds} rounds"
        f" of {args.iterations} iterations a task"
    )
    print("| implementation | AsyncStore / this | iterations/s | client CPU µs/iteration | loop lag p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for name, rate in median.items():
        p50, p99 = percentiles(lags[name])
        cpu = statistics.median(cpus[name])
        print(f"| {name} | {mine / rate:.2f} | {rate:,.0f} | {cpu:,.0f} | {p50:.2f} | {p99:.2f} |", flush=True)
    print(f"\nAsyncStore / floor: {mine / floor:.2f} (target ≥ 0.8); AsyncStore / to_thread: {mine / threads:.2f}"
          " (target ≥ 2)")  # fmt: skip
    # The bare driver's own ratio: what any asyncio client sending this SQL reaches on this network.
    print(f"floor / to_thread: {floor / threads:.2f}")


def print_paced(
    rates: dict[str, list[float]], lags: dict[str, list[float]], offered: float, args: argparse.Namespace
) -> None:
    """The loop's lag of each implementation with the load paced to `offered` iterations per second."""
    print(
        f"\nPaced: the same {args.tasks} tasks offered {offered:,.0f} iterations/s together ({args.pace:g} of"
        f" AsyncStore's rate above); {args.rounds} rounds of {args.paced_iterations} iterations a task"
    )
    print("| implementation | iterations/s achieved | loop lag p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for name, values in rates.items():
        p50, p99 = percentiles(lags[name])
        print(f"| {name} | {statistics.median(values):,.0f} | {p50:.2f} | {p99:.2f} |", flush=True)


def percentiles(values: list[float]) -> tuple[float, float]:
    """The 50th and 99th percentiles of `values`."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


# --- SQLite: latency of single operations ---------------------------------------------------------


async def medians_us(operations: list[Callable[[], Awaitable[Any]]], repeat: int, rounds: int = 10) -> list[float]:
    """benchmarks.ops.medians_us for coroutines, all awaited in one event loop: the median time of
    each operation in microseconds, in `rounds` rounds of one block of calls per operation."""
    samples: list[list[int]] = [[] for _ in operations]
    for _ in range(rounds):
        for operation, times in zip(operations, samples, strict=True):
            for _ in range(min(10, repeat)):
                await operation()
            for _ in range(max(1, repeat // rounds)):
                started = time.perf_counter_ns()
                await operation()
                times.append(time.perf_counter_ns() - started)
    return [statistics.median(times) / 1000 for times in samples]


def awaited(call: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    """A sync call as a coroutine function, so both stores are timed by one loop."""

    async def run() -> Any:
        return call()

    return run


async def sqlite_latency(args: argparse.Namespace) -> None:
    """Print the table of single-operation latencies, AsyncStore against Store."""
    path = Path(tempfile.mkdtemp()) / "bench.db"
    store = Store(f"sqlite:///{path}")
    aio = AsyncStore(f"sqlite:///{path}")
    assistant = store.assistants.create(model="gpt-4o", instructions="be brief").id
    writes, lifecycle, paged = (store.threads.create().id for _ in range(3))
    store.messages.create_many(paged, [{"role": "user", "content": f"message {i}"} for i in range(1000)])
    middle = store.messages.list(paged, limit=100, after=store.messages.list(paged, limit=100).last_id).last_id
    run_id = store.runs.create(store.threads.create().id, assistant_id=assistant).id

    async def async_create() -> dict[str, Any]:
        return (await aio.messages.create(writes, role="user", content="hello")).to_api()

    async def async_get() -> dict[str, Any]:
        return (await aio.runs.get(run_id)).to_api()

    async def async_page() -> dict[str, Any]:
        return (await aio.messages.list(paged, after=middle)).to_api()

    async def async_lifecycle() -> dict[str, Any]:
        created = await aio.runs.create(lifecycle, assistant_id=assistant)
        return (await aio.runs.complete((await aio.runs.start(created.id)).id)).to_api()

    def sync_create() -> dict[str, Any]:
        return store.messages.create(writes, role="user", content="hello").to_api()

    def sync_lifecycle() -> dict[str, Any]:
        created = store.runs.create(lifecycle, assistant_id=assistant)
        return store.runs.complete(store.runs.start(created.id).id).to_api()

    cases: list[tuple[str, Callable[[], Awaitable[Any]], Callable[[], Awaitable[Any]]]] = [
        ("create message", async_create, awaited(sync_create)),
        ("get run", async_get, awaited(lambda: store.runs.get(run_id).to_api())),
        ("page of 20 messages", async_page, awaited(lambda: store.messages.list(paged, after=middle).to_api())),
        ("run lifecycle (create, start, complete)", async_lifecycle, awaited(sync_lifecycle)),
    ]
    medians = await medians_us([implementation for case in cases for implementation in case[1:]], args.repeat)
    print(f"\nSQLite (WAL, synchronous=NORMAL): median of {args.repeat} calls each, microseconds")
    print("| operation | AsyncStore / Store | AsyncStore | Store |")
    print("|---|---|---|---|")
    for index, (name, *_) in enumerate(cases):
        mine, sync = medians[2 * index : 2 * index + 2]
        print(f"| {name} | {mine / sync:.2f} | {mine:.0f} | {sync:.0f} |", flush=True)
    await aio.close()
    await print_hand_off(store, run_id, args.repeat)
    store.close()


async def print_hand_off(store: Store, run_id: str, repeat: int) -> None:
    """What handing a call to another thread costs by itself: a call that does nothing, through
    AsyncStore's SQLite runner, through a one-thread executor and through `asyncio.to_thread`, and
    two threads passing a byte there and back through pipes (what the runner uses), with no event
    loop; and where a get's time goes: the get on the loop's thread, the same get timed inside the
    runner's worker, and awaited through the runner."""
    runner = ThreadRunner()
    inside: list[int] = []

    def get() -> dict[str, Any]:
        return store.runs.get(run_id).to_api()

    def timed_get() -> None:
        started = time.perf_counter_ns()
        get()
        inside.append(time.perf_counter_ns() - started)

    loop = asyncio.get_running_loop()
    one_thread = ThreadPoolExecutor(1)  # a thread of its own, as aiosqlite's connection has
    through_runner, get_through_runner, get_here, through_executor, through_to_thread = await medians_us(
        [
            lambda: runner(int),
            lambda: runner(timed_get),
            awaited(get),
            lambda: loop.run_in_executor(one_thread, int),
            lambda: asyncio.to_thread(int),
        ],
        repeat,
    )
    runner.close()
    one_thread.shutdown()
    bare = bare_hand_off_us(repeat)
    print(
        f"A call that does nothing, through AsyncStore's runner: {through_runner:.0f} µs; two threads passing"
        f" a byte there and back through pipes (no event loop): {bare:.0f} µs; the event loop's part (its"
        f" wake-up, the future, the task's next step): {through_runner - bare:.0f} µs (medians)"
    )
    print(
        f"A get run: {get_here:.0f} µs on the loop's thread; {statistics.median(inside) / 1000:.0f} µs timed inside"
        f" the runner's worker thread; {get_through_runner:.0f} µs awaited through the runner (medians)"
    )
    print(
        f"The same call that does nothing through a one-thread executor: {through_executor:.0f} µs; through"
        f" asyncio.to_thread: {through_to_thread:.0f} µs. The least any hand-off lets a get reach, the get on the"
        f" loop's thread and the runner's call that does nothing: {(get_here + through_runner) / get_here:.2f}×"
        " the sync get"
    )


def bare_hand_off_us(repeat: int) -> float:
    """The median time of two threads passing a byte there and back through two pipes, in µs."""
    there_read, there_write = os.pipe()
    back_read, back_write = os.pipe()

    def echo() -> None:
        while os.read(there_read, 1) == b"x":
            os.write(back_write, b"x")

    thread = threading.Thread(target=echo)
    thread.start()
    times = []
    for _ in range(repeat):
        started = time.perf_counter_ns()
        os.write(there_write, b"x")
        os.read(back_read, 1)
        times.append(time.perf_counter_ns() - started)
    os.write(there_write, b"\0")
    thread.join()
    for descriptor in (there_read, there_write, back_read, back_write):
        os.close(descriptor)
    return statistics.median(times) / 1000


@contextmanager
def delayed(url: str, delay_ms: float) -> Iterator[str]:
    """`url` reached through benchmarks.delay_proxy (a process of its own, on 127.0.0.1), which holds
    every chunk `delay_ms` in each direction: a database in another rack rather than on this host."""
    parsed = sa.make_url(url)
    target = f"{parsed.host or '127.0.0.1'}:{parsed.port or 5432}"
    command = [sys.executable, "-m", "benchmarks.delay_proxy", "--to", target, "--delay-ms", str(delay_ms)]
    root = Path(__file__).parent.parent
    proxy = subprocess.Popen(command, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proxy.stdout is not None
        port = int(proxy.stdout.readline())
        yield parsed.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        assert proxy.stdin is not None
        proxy.stdin.close()  # the proxy ends when its input does
        try:
            proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2000, help="SQLite: calls of each operation")
    parser.add_argument("--tasks", type=int, default=100, help="PostgreSQL: concurrent tasks")
    parser.add_argument("--pool", type=int, default=20, help="PostgreSQL: connections in each pool")
    parser.add_argument("--iterations", type=int, default=20, help="PostgreSQL: iterations of each task a round")
    parser.add_argument("--rounds", type=int, default=7, help="PostgreSQL: rounds of every implementation")
    parser.add_argument("--postgres", default=os.environ.get("THREADSTORE_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--pace",
        type=float,
        default=0.5,
        help="PostgreSQL: also pace the load to this share of AsyncStore's rate and report the lag (0: not)",
    )
    parser.add_argument("--paced-iterations", type=int, default=5, help="PostgreSQL: iterations a task when paced")
    parser.add_argument("--pin", type=int, metavar="CPU", help="SQLite: run every thread of this process on this CPU")
    parser.add_argument(
        "--delay-ms", type=float, nargs="*", default=[1.0], help="PostgreSQL: also through a proxy adding each delay"
    )
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores")
    placement = os.sched_getaffinity(0)
    if args.pin is not None:
        # Before any thread starts: a thread inherits the affinity of the thread that starts it.
        os.sched_setaffinity(0, {args.pin})
        print(f"(SQLite: every thread of this process on CPU {args.pin})")
    asyncio.run(sqlite_latency(args))
    os.sched_setaffinity(0, placement)  # PostgreSQL's tasks as before (its workers have ended)
    if args.postgres:
        with postgres_schema(args.postgres) as url:
            asyncio.run(postgres_throughput(url, args, "local server"))
            for delay_ms in args.delay_ms:
                with delayed(url, delay_ms) as far:
                    network = f"through a proxy adding {delay_ms:g} ms each way"
                    asyncio.run(postgres_throughput(far, args, network))


if __name__ == "__main__":
    main()
