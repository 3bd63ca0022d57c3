"""What the thread search index buys and costs, on SQLite and (with --postgres) PostgreSQL, in
one run:

- `langgraph.threads.search(metadata={"user_id": X}, limit=10)` among --threads threads (default
  1,000,000) over 1,000 users, against the same search among 1,000 threads over 100 users (each
  search returns a page of 10): medians and their ratio (an index keeps it near 1; a scan grows
  with the table);
- `langgraph.threads.create(metadata={"user_id": X})` on a store with the index (SQLite's
  metadata table, PostgreSQL's GIN index) against one without it: medians and their ratio.

The threads are bulk-loaded with plain SQL (setup, not measured).

    python -m benchmarks.search [--threads 1000000] [--repeat 300] [--postgres URL]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from itertools import count
from pathlib import Path
from typing import Any
from unittest.mock import patch

from benchmarks.ops import MICROS, NOW, medians_us, postgres_schema
from threadstore import Store, transitions
from threadstore.fastsql import Raw, insert
from threadstore.langgraph import metadata_index
from threadstore.langgraph.models import threads

USERS = 1_000
SMALL = 1_000
# At 1,000 threads, 100 users of 10 threads each: both searches return a full page of 10, so the
# ratio shows what the table's size costs, not what 9 more threads in the answer cost.
SMALL_USERS = 100
GIN = "ix_threadstore_langgraph_threads_metadata"

# Thread ids in creation order on both backends, as threadstore's own (UUID version 7) are: the
# newest threads' ids then sit together at the end of the primary key, as in a real store. With
# random ids (a client's uuid4) each thread of a page is a primary-key leaf of its own, read cold
# from outside the database's cache at a million threads.
SQLITE_LOAD = [
    f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :threads)
    INSERT INTO threadstore_langgraph_threads (thread_id, created_at, updated_at, metadata, status)
    SELECT printf('%08x-0000-4000-8000-%012x', i, i), {MICROS} + i, {MICROS} + i,
           json_object('user_id', 'u' || (i % :users)), 'idle' FROM n""",
    """INSERT INTO threadstore_langgraph_thread_metadata (thread_id, key, value, created_at)
    SELECT thread_id, 'user_id', 's:' || json_extract(metadata, '$.user_id'), created_at
    FROM threadstore_langgraph_threads""",
    "ANALYZE",
]
POSTGRES_LOAD = [
    f"DROP INDEX {GIN}",  # built once after the load, faster than row by row
    f"""INSERT INTO threadstore_langgraph_threads (thread_id, created_at, updated_at, metadata, status)
    SELECT lpad(to_hex(i), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0'), {MICROS} + i, {MICROS} + i,
           jsonb_build_object('user_id', 'u' || mod(i, :users)), 'idle'
    FROM generate_series(1, :threads) AS i""",
    f"CREATE INDEX {GIN} ON threadstore_langgraph_threads USING gin (metadata jsonb_path_ops)",
    """INSERT INTO threadstore_langgraph_thread_metadata (thread_id, key, value, created_at)
    SELECT thread_id, 'user_id', 's:' || (metadata->>'user_id'), created_at FROM threadstore_langgraph_threads""",
]
# What autovacuum does to tables that have just received a million rows, which a bulk load in one
# transaction leaves undone: without it the first search of each user (each measured search, as
# they take the users in turn) sets the hint bits of the pages it reads, writing them, and its
# index-only scan reads the table too, as the visibility map is still empty. Only these tables:
# the database may be shared.
POSTGRES_VACUUM = "VACUUM (ANALYZE) threadstore_langgraph_threads, threadstore_langgraph_thread_metadata"


def load(store: Store, threads_count: int, users: int) -> None:
    """`threads_count` threads over `users` users, with plain SQL."""
    postgresql = store.engine.dialect.name == "postgresql"
    with store.engine.begin() as connection:
        for statement in POSTGRES_LOAD if postgresql else SQLITE_LOAD:
            connection.exec_driver_sql(statement.replace(":threads", str(threads_count)).replace(":users", str(users)))
    if postgresql:  # outside a transaction, as VACUUM must be
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(POSTGRES_VACUUM)


def searcher(store: Store, users: int) -> Callable[[], Any]:
    turn = count()

    def search() -> Any:
        found = store.langgraph.threads.search(metadata={"user_id": f"u{next(turn) % users}"}, limit=10)
        assert found, "every user has threads"
        return found

    return search


_PLAIN_THREAD = insert(threads)


def _unindexed(raw: Raw, row: dict[str, Any], now: int) -> None:
    """The thread's INSERT alone: the store without the index."""
    transitions.create(raw, _PLAIN_THREAD, row, now)


def creator(store: Store, *, indexed: bool) -> Callable[[], Any]:
    users = count()
    create_thread = metadata_index.create_thread if indexed else _unindexed

    def create() -> Any:
        # Both sides patch, so that the patch's own cost falls on both alike.
        with patch.object(metadata_index, "create_thread", create_thread):
            return store.langgraph.threads.create(metadata={"user_id": f"u{next(users) % USERS}"})

    return create


def drop_index(store: Store) -> None:
    with store.engine.begin() as connection:
        if store.engine.dialect.name == "postgresql":
            connection.exec_driver_sql(f"DROP INDEX {GIN}")
        connection.exec_driver_sql("DROP TABLE threadstore_langgraph_thread_metadata")


def measure(new_database: Callable[[], str], args: argparse.Namespace) -> None:
    """Print the search and create rows of one backend; `new_database` gives an empty one's URL."""
    opened = [Store(new_database(), clock=lambda: NOW, events=False, migrate_on_open=True) for _ in range(4)]
    small, large, with_index, without_index = opened
    load(small, SMALL, SMALL_USERS)
    load(large, args.threads, USERS)
    load(with_index, SMALL, SMALL_USERS)
    load(without_index, SMALL, SMALL_USERS)
    drop_index(without_index)
    at_small, at_large = medians_us([searcher(small, SMALL_USERS), searcher(large, USERS)], args.repeat)
    print(f"| search, 10 of a user's threads | {at_small:.0f} | {at_large:.0f} | {at_large / at_small:.2f} |")
    indexed, unindexed = medians_us(
        [creator(with_index, indexed=True), creator(without_index, indexed=False)], args.repeat
    )
    print(f"| thread create | {indexed:.0f} (indexed) | {unindexed:.0f} (not) | {indexed / unindexed:.2f} |")
    for store in opened:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--postgres", default=os.environ.get("THREADSTORE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    header = f"| operation | at {SMALL:,} threads, µs | at {args.threads:,} threads, µs | ratio |\n|---|---|---|---|"
    folder = Path(tempfile.mkdtemp())
    files = count()
    print(f"{os.cpu_count()} cores; {USERS:,} users ({SMALL_USERS} at {SMALL:,} threads)", flush=True)
    print(f"\nSQLite\n{header}", flush=True)
    measure(lambda: f"sqlite:///{folder / f'search{next(files)}.db'}", args)
    if args.postgres:
        with ExitStack() as schemas:
            print(f"\nPostgreSQL\n{header}", flush=True)
            measure(lambda: schemas.enter_context(postgres_schema(args.postgres)), args)


if __name__ == "__main__":
    main()
