"""The benchmarks still run (at a tiny size; their figures are read from their own output)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]


def test_the_claims_benchmark_prints_its_table() -> None:
    env = {k: v for k, v in os.environ.items() if k != "THREADSTORE_TEST_POSTGRES_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.claims", "--runs", "20", "--repeat", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    rows = [line for line in result.stdout.splitlines() if line.startswith("| SQLite |")]
    assert [row.split("|")[2].strip() for row in rows] == ["1", "2", "4", "8"]


def test_the_operations_benchmark_prints_every_operation_with_its_ratios_on_each_backend() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.ops", "--repeat", "5", "--big", "2000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
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


LANGGRAPH_ROWS = (
    "LangGraph thread create",
    "LangGraph run create (enqueued on a busy thread)",
    "LangGraph claim_next + finish",
    "LangGraph heartbeat",
    "LangGraph get run",
    "LangGraph threads.search by metadata, 10 of 1,000 threads match",
    "LangGraph runs list, 10 of a thread's 20",
)
