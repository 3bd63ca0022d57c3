"""Walk every page of a thread's messages and report memory: `python -m benchmarks.walk URL THREAD`.
Prints JSON with the number of messages seen and the resident memory (MiB) at the start, at the
end, and at its peak, read in this fresh process.

The peak is the kernel's high-water mark of this process's own memory (VmHWM). `getrusage`'s
maxrss would not do: Linux carries it across exec, so it would report the RSS of the parent that
forked this process (the benchmark, after filling a million messages)."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path

from threadstore import Store


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(url: str, thread_id: str) -> None:
    store = Store(url, migrate_on_open=False)
    store.messages.list(thread_id, limit=1)  # imports and connections are warm before the baseline
    start = resident_mib()
    seen, after = 0, None
    while True:
        page = store.messages.list(thread_id, limit=100, order="asc", after=after)
        seen += len(page)
        if not page.has_more:
            break
        after = page.last_id
    peak = peak_mib()
    print(json.dumps({"messages": seen, "start_mib": start, "end_mib": resident_mib(), "peak_mib": peak}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
