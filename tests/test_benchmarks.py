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
