"""The benchmarks still run (at a tiny size; their figures are read from their own output)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]


def run_module(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m module args` from the checkout; fail on a non-zero exit."""
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=True)


def test_the_claims_benchmark_prints_its_table() -> None:
    env = {k: v for k, v in os.environ.items() if k != "THREADSTORE_TEST_POSTGRES_URL"}
    result = run_module("benchmarks.claims", "--runs", "20", "--repeat", "1", env=env)
    rows = [line for line in result.stdout.splitlines() if line.startswith("| SQLite |")]
    assert [row.split("|")[2].strip() for row in rows] == ["1", "2", "4", "8"]


def test_the_operations_benchmark_prints_every_operation_with_its_ratios_on_each_backend() -> None:
    result = run_module("benchmarks.ops", "--repeat", "5", "--big", "2000")
    lines = result.stdout.splitlines()
    rows = [line.split("|") for line in lines if line.startswith("| ") and not line.startswith("| operation")]
    backends = 2 if os.environ.get("THREADSTORE_TEST_POSTGRES_URL") else 1
    names = [row[1].strip() for row in rows]
    for name in ("create message", "claim_next", *LANGGRAPH_ROWS):
        assert names.count(name) == backends, name
    assert sum("bulk import" in name for name in names) == backends
    assert len(rows) == 15 * backends
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)  # the ratios come first
    assert sum(line.startswith("walking all 2,000 messages") for line in lines) == backends


def test_the_asyncio_benchmark_prints_every_row_with_its_ratios() -> None:
    sizes = ["--repeat", "5", "--tasks", "10", "--pool", "3", "--iterations", "2", "--rounds", "1", "--delay-ms", "1"]
    result = run_module("benchmarks.asyncio_ops", *sizes, "--pace", "0.5", "--paced-iterations", "1")
    lines = result.stdout.splitlines()
    headers = ("| operation", "| implementation")
    rows = [line.split("|") for line in lines if line.startswith("| ") and not line.startswith(headers)]
    sqlite = ["create message", "get run", "page of 20 messages", "run lifecycle (create, start, complete)"]
    postgres = ["AsyncStore", "floor (psycopg AsyncConnectionPool)", "Store via asyncio.to_thread"]
    # PostgreSQL twice (the local server, then through the proxy adding 1 ms each way), each
    # network's table followed by the paced one
    networks = 2 if os.environ.get("THREADSTORE_TEST_POSTGRES_URL") else 0
    assert [row[1].strip() for row in rows] == sqlite + networks * 2 * postgres
    assert all(float(row[2]) > 0 for row in rows[: len(sqlite)])  # AsyncStore / Store
    throughput = [row for row in rows[len(sqlite) :] if len(row) == 8]
    paced = [row for row in rows[len(sqlite) :] if len(row) == 6]
    assert len(throughput) == len(paced) == networks * len(postgres)
    # the ratio, the rate, CPU per iteration, then lag p50 ≤ p99
    assert all(float(row[2]) > 0 and float(row[3].replace(",", "")) > 0 for row in throughput)
    assert all(float(row[6]) >= float(row[5]) for row in throughput)
    # paced: the rate, then lag p50 ≤ p99
    assert all(float(row[2].replace(",", "")) > 0 and float(row[4]) >= float(row[3]) for row in paced)
    assert sum(line.startswith("AsyncStore / floor:") for line in lines) == networks
    assert sum(line.startswith("Paced:") for line in lines) == networks
    assert sum(line.startswith("A call that does nothing, through AsyncStore's runner:") for line in lines) == 1
    assert sum(line.startswith("A get run:") for line in lines) == 1


def test_the_events_benchmark_prints_its_cost_latency_and_followers_on_each_backend() -> None:
    result = run_module("benchmarks.events", "--repeat", "5", "--messages", "10")
    lines = result.stdout.splitlines()
    backends = 2 if os.environ.get("THREADSTORE_TEST_POSTGRES_URL") else 1
    costs = [line.split("|") for line in lines if line.startswith("| median µs |")]
    assert len(costs) == backends and all(float(row[4]) > 0 for row in costs)
    assert sum(line.startswith("follow latency over 10 of 10 messages") for line in lines) == backends
    followers = [line for line in lines if line.startswith("100 followers of one run: 100 received all")]
    assert len(followers) == backends
    assert followers[-1].endswith(f"connections listening for events: {backends - 1}")


LANGGRAPH_ROWS = (
    "LangGraph thread create",
    "LangGraph run create (enqueued on a busy thread)",
    "LangGraph claim_next + finish",
    "LangGraph heartbeat",
    "LangGraph get run",
    "LangGraph threads.search by metadata, 10 of 1,000 threads match",
    "LangGraph runs list, 10 of a thread's 20",
)


def test_the_responses_benchmark_prints_its_rows_and_the_page_ratio_on_each_backend() -> None:
    result = run_module("benchmarks.responses", "--repeat", "5", "--big", "500")
    lines = result.stdout.splitlines()
    backends = 2 if os.environ.get("THREADSTORE_TEST_POSTGRES_URL") else 1
    rows = [line.split("|") for line in lines if line.startswith("| ") and not line.startswith("| operation")]
    names = [row[1].strip() for row in rows]
    assert names.count("context() of a 100-response chain") == backends
    assert names.count("page of 20 items, conversation of 500") == backends
    assert len(rows) == 4 * backends
    assert all(float(row[2]) > 0 and float(row[3]) > 0 for row in rows)  # the ratio, then threadstore's time
    assert sum(line.startswith("page at 500 items / page at 100 items:") for line in lines) == backends


def test_the_search_benchmark_prints_search_and_create_ratios_on_each_backend() -> None:
    result = run_module("benchmarks.search", "--threads", "3000", "--repeat", "20")
    rows = [line.split("|") for line in result.stdout.splitlines() if line.startswith(("| search", "| thread create"))]
    backends = 2 if os.environ.get("THREADSTORE_TEST_POSTGRES_URL") else 1
    assert [row[1].strip() for row in rows] == ["search, 10 of a user's threads", "thread create"] * backends
    assert all(float(row[4]) > 0 for row in rows)
