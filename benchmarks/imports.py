"""What `import threadstore` costs, beside `import sqlmodel` (its own floor: threadstore's tables
are SQLModel classes) measured in the same run, alternating, in fresh interpreters.

    python -m benchmarks.imports [--repeat 9]

Prints the median cumulative import time of each (from `python -X importtime`), their ratio, and
the modules `import threadstore` plus opening a migrated SQLite store load beyond sqlmodel's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

OPEN_STORE = """
import sys, sqlmodel
before = set(sys.modules)
from threadstore import Store
Store(sys.argv[1]).close()
extra = sorted({name.split(".")[0] for name in set(sys.modules) - before})
print(len(set(sys.modules) - before), " ".join(extra))
"""


def cumulative_seconds(module: str) -> float:
    """The cumulative import time of `module` in a fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    for line in result.stderr.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1]) / 1e6
    raise RuntimeError(f"no importtime line for {module}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"threadstore": [], "sqlmodel": []}
    for _ in range(args.repeat):
        for module in times:
            times[module].append(cumulative_seconds(module))
    medians = {module: statistics.median(values) for module, values in times.items()}
    print("| import | median cumulative s |")
    print("|---|---|")
    for module, median in medians.items():
        print(f"| {module} | {median:.3f} |")
    print(f"threadstore / sqlmodel: {medians['threadstore'] / medians['sqlmodel']:.2f}")
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
