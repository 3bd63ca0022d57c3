"""What `import threadstore` costs, and `from threadstore import Store` (or AsyncStore), beside
`import sqlmodel` (their floor: threadstore's tables are SQLModel classes) measured in the same
run, alternating, in fresh interpreters.

    python -m benchmarks.imports [--repeat 9]

Prints the median time each statement takes in a fresh interpreter, its ratio to
sqlmodel's, and
the modules `import threadstore` plus opening a migrated SQLite store load beyond sqlmodel's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

STATEMENTS = (
    "import sqlmodel",
    "import threadstore",
    "from threadstore import Store",
    "from threadstore import AsyncStore",
)
# Modules load from their cached bytecode, as an installed package's do (pip compiles them):
# with PYTHONDONTWRITEBYTECODE set, an editable checkout's modules would be compiled on every run.
BYTECODE = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
OPEN_STORE = """
import sys, sqlmodel
before = set(sys.modules)
from threadstore import Store
Store(sys.argv[1]).close()
extra = sorted({name.split(".")[0] for name in set(sys.modules) - before})
print(len(set(sys.modules) - before), " ".join(extra))
"""


def cumulative_seconds(statement: str) -> float:
    """What `statement` spends importing, in a fresh interpreter (what `python -X importtime`
    sums over the modules it imports, without the interpreter's own start-up imports)."""
    timed = f"import time; started = time.perf_counter(); {statement}; print(time.perf_counter() - started)"
    result = subprocess.run([sys.executable, "-c", timed], capture_output=True, text=True, check=True, env=BYTECODE)
    return float(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    times: dict[str, list[float]] = {statement: [] for statement in STATEMENTS}
    for statement in times:  # writes the bytecode caches
        cumulative_seconds(statement)
    for _ in range(args.repeat):
        for statement, values in times.items():
            values.append(cumulative_seconds(statement))
    medians = {statement: statistics.median(values) for statement, values in times.items()}
    print("| statement | median cumulative s | / import sqlmodel |")
    print("|---|---|---|")
    for statement, median in medians.items():
        print(f"| `{statement}` | {median:.3f} | {median / medians['import sqlmodel']:.2f} |")
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'x.db'}"
        subprocess.run(
            [sys.executable, "-c", "import sys; from threadstore import Store; Store(sys.argv[1]).close()", url],
            check=True,
        )
        result = subprocess.run([sys.executable, "-c", OPEN_STORE, url], capture_output=True, text=True, check=True)
    count, _, packages = result.stdout.strip().partition(" ")
    print(f"opening a migrated SQLite store loads {count} modules beyond sqlmodel's, from: {packages}")


if __name__ == "__main__":
    main()
