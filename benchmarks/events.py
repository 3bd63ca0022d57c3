"""What the event stream costs and how fast it delivers, on SQLite and (with --postgres) PostgreSQL,
in one run:

- a run lifecycle (create, start, a step with usage, complete) with events against the same
  lifecycle on a store opened with `events=False`: medians and their ratio;
- follow latency: one writer adds messages to a thread, a follower in another thread of the same
  process reads them; the time from the writer's call returning (its commit) to the follower
  holding the event, p50 and p99;
- 100 followers of one run: each receives every event of the run; on PostgreSQL the store holds
  one listening connection.

    python -m benchmarks.events [--repeat 500] [--messages 200] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from benchmarks.ops import NOW, medians_us, postgres_schema
from threadstore import Store

USAGE = {"prompt_tokens": 10, "completion_tokens": 5}
APPLICATION = "threadstore-events-benchmark"
STEP = {"type": "tool_calls", "tool_calls": []}


def lifecycle(store: Store, thread: str, assistant: str) -> None:
    run = store.runs.create(thread, assistant_id=assistant).id
    store.runs.start(run)
    step = store.run_steps.create(run, step_details=STEP).id
    store.run_steps.complete(step, usage=USAGE)
    store.runs.complete(run, usage=USAGE)


def cost(url: str, repeat: int) -> None:
    """The lifecycle with and without events, in the same rounds."""
    loud, quiet = Store(url, clock=lambda: NOW), Store(url, clock=lambda: NOW, events=False)
    cases = []
    for store in (loud, quiet):
        thread, assistant = store.threads.create().id, store.assistants.create(model="gpt-4o").id
        cases.append(lambda store=store, thread=thread, assistant=assistant: lifecycle(store, thread, assistant))
    with_events, without = medians_us(cases, repeat)
    print("| run lifecycle (create, start, step with usage, complete) | with events | events=False | ratio |")
    print("|---|---|---|---|")
    print(f"| median µs | {with_events:.0f} | {without:.0f} | {with_events / without:.2f} |", flush=True)
    loud.close()
    quiet.close()


def latency(url: str, messages: int) -> None:
    """Commit → follower, per message."""
    store = Store(url)
    thread = store.threads.create().id
    start = store.events.list(thread_id=thread)[-1].id
    committed: dict[str, float] = {}
    received: dict[str, float] = {}

    def follow() -> None:
        for event in store.events.follow(thread_id=thread, after=start, timeout=5):
            received[event.data["id"]] = time.perf_counter()
            if len(received) == messages:
                return

    follower = threading.Thread(target=follow)
    follower.start()
    time.sleep(0.5)  # the follower is waiting (and, on PostgreSQL, listening)
    for index in range(messages):
        message = store.messages.create(thread, role="user", content=f"m{index}")
        committed[message.id] = time.perf_counter()
        time.sleep(0.01)
    follower.join()
    delays = sorted(max(0.0, received[key] - committed[key]) * 1000 for key in committed if key in received)
    p50, p99 = statistics.median(delays), delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    print(f"\nfollow latency over {len(delays)} of {messages} messages: p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)
    store.close()


def many_followers(url: str, followers: int = 100) -> None:
    """Followers of one run, each receiving every event."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.update_query_dict({"application_name": APPLICATION})
    store = Store(parsed)
    thread = store.threads.create().id
    run = store.runs.create(thread, assistant_id=store.assistants.create(model="gpt-4o").id).id
    received: list[list[str]] = [[] for _ in range(followers)]
    threads = [
        threading.Thread(target=lambda got=got: got.extend(e.id for e in store.events.follow(run_id=run)))
        for got in received
    ]
    for follower in threads:
        follower.start()
    time.sleep(0.5)
    lifecycle_of(store, run)
    for follower in threads:
        follower.join(timeout=60)
    expected = [event.id for event in store.events.list(run_id=run)]
    complete = sum(got == expected for got in received)
    print(
        f"{followers} followers of one run: {complete} received all {len(expected)} events; "
        f"connections listening for events: {listening(store)}",
        flush=True,
    )
    store.close()


def listening(store: Store) -> int:
    """How many connections listen for this store's events (none on SQLite, which polls)."""
    if store.engine.dialect.name != "postgresql":
        return 0
    with store.engine.connect() as connection:
        query = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' AND application_name = %(name)s"
        return int(connection.exec_driver_sql(query, {"name": APPLICATION}).scalar_one())


def lifecycle_of(store: Store, run: str) -> None:
    store.runs.start(run)
    step = store.run_steps.create(run, step_details=STEP).id
    store.run_steps.complete(step, usage=USAGE)
    store.runs.complete(run, usage=USAGE)


def measure(url: str, args: argparse.Namespace) -> None:
    Store(url, migrate_on_open=True).close()
    cost(url, args.repeat)
    latency(url, args.messages)
    many_followers(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--postgres", default=os.environ.get("THREADSTORE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; SQLite (followers read every 0.05 s)")
    measure(f"sqlite:///{Path(tempfile.mkdtemp()) / 'events.db'}", args)
    if args.postgres:
        with postgres_schema(args.postgres) as url:
            print("\nPostgreSQL (followers woken by LISTEN/NOTIFY)")
            measure(url, args)


if __name__ == "__main__":
    main()
