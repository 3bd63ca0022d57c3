"""Walk every page of a thread's messages and report memory: `python -m benchmarks.walk URL THREAD`.
Prints JSON with the number of messages seen and the resident memory (MiB) at the start, at the
end, and at its peak, read in this fresh process."""

from __future__ import annotations

import json
import resource
import sys

from threadstore import Store


def resident_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"messages": seen, "start_mib": start, "end_mib": resident_mib(), "peak_mib": peak}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
