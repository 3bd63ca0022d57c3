"""The index of LangGraph thread metadata, so that `threads.search(metadata={...})` finds a
user's newest threads without reading the others.

Each thread's top-level scalar metadata entries are kept in a table of their own
(`langgraph_thread_metadata`: key, a token of the value, the thread's creation time, thread),
written in the same transaction as the thread's create and metadata update and deleted with the
thread. Its primary key is the whole row, so the table is one B-tree a create writes one entry a
key into. A search narrows the threads to those holding one scalar entry of its filter, read from
that B-tree in creation order (so a page of a user's newest threads costs the same among a
thousand threads or a million), meets each row's thread by id and creation time (a row left by a
thread deleted from outside meets none), and then applies the rest of the filter to those threads
as before: nested values and lists keep the `@>` rules. On PostgreSQL, a GIN index (jsonb_path_ops) on the
metadata serves the filters that have no scalar entry; SQLite has none.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY

from threadstore import transitions
from threadstore.fastsql import Raw, Statement, insert
from threadstore.langgraph.models import thread_metadata, threads

Entry = tuple[str, str]


def token(value: Any) -> str | None:
    """The token of a scalar JSON value, equal for values `@>` finds equal (1 and 1.0); None for
    an object or array, which the index leaves to the filter."""
    if value is None:
        return "z:"
    if value is True or value is False:
        return "b:1" if value else "b:0"
    if isinstance(value, str):
        return "s:" + value
    if isinstance(value, int | float):
        return "n:" + _number(value)
    return None


def _number(value: int | float) -> str:
    try:
        as_float = float(value)
    except OverflowError:  # an integer beyond any float: equal only to itself
        return str(value)
    if as_float != value:  # an integer a float cannot hold exactly
        return str(value)
    return repr(as_float + 0.0)  # + 0.0 makes -0.0 the 0.0 it equals


def entries(metadata: dict[str, Any]) -> list[Entry]:
    """The indexed entries of a thread's metadata: its top-level keys with scalar values."""
    found = []
    for key, value in metadata.items():
        tokened = token(value)
        if tokened is not None:
            found.append((key, tokened))
    return found


def narrowing(wanted: dict[str, Any]) -> Entry | None:
    """The entry of a metadata filter the index narrows by: its first scalar one, if any."""
    found = entries(wanted)
    return found[0] if found else None


# ON CONFLICT DO NOTHING: the one row that can be there already is the same row, left by a thread
# deleted from outside (plain SQL) and made again with its id, in the same microsecond, with the
# same entry. SQLite compiles PostgreSQL's clause as its own (the same words).
_INSERT = Statement(
    postgresql.insert(thread_metadata)
    .values({column.name: sa.bindparam(column.name) for column in thread_metadata.c})
    .on_conflict_do_nothing()
)
_FORGET = Statement(
    sa.delete(thread_metadata).where(
        *(thread_metadata.c[name] == sa.bindparam(name) for name in ("key", "value", "created_at", "thread_id"))
    )
)


def _entries_of_arrays() -> sa.CTE:
    """PostgreSQL: the INSERT of a thread's entries from two arrays (keys, tokens), as a CTE of the
    thread's own INSERT, whose `thread_id` and `created_at` parameters it shares."""
    pairs = (
        sa.func.unnest(
            sa.bindparam("index_keys", type_=ARRAY(sa.String())), sa.bindparam("index_values", type_=ARRAY(sa.String()))
        )
        .table_valued("key", "value")
        .render_derived(name="entry")
    )
    rows = sa.select(
        sa.bindparam("thread_id", type_=sa.String()),
        pairs.c.key,
        pairs.c.value,
        sa.bindparam("created_at", type_=sa.BigInteger()),
    )
    columns = ["thread_id", "key", "value", "created_at"]
    return postgresql.insert(thread_metadata).from_select(columns, rows).on_conflict_do_nothing().cte("indexed")


_THREAD = insert(threads)
_THREAD_AND_ENTRIES = insert(threads, also=_entries_of_arrays())


def create_thread(raw: Raw, row: dict[str, Any], now: int) -> None:
    """Insert the new thread `row` and index its metadata, in the caller's unit of work, with the
    thread's events. On PostgreSQL one statement does both (the entries in a CTE of the thread's
    INSERT): a round trip of their own would be most of what the index costs a create there."""
    found = entries(row["metadata"])
    if raw.dialect.name == "postgresql":
        keys, tokens = [key for key, _ in found], [value for _, value in found]
        transitions.create(raw, _THREAD_AND_ENTRIES, {**row, "index_keys": keys, "index_values": tokens}, now)
        return
    transitions.create(raw, _THREAD, row, now)
    raw.execute_many(_INSERT, _rows(row["thread_id"], row["created_at"], found))


def update(raw: Raw, thread_id: str, created_at: int, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Index a thread's metadata changed from `before` to `after`, in the caller's unit of work:
    the entries that changed go, the new ones come; the others stay as they are."""
    old, new = entries(before), entries(after)
    kept = set(old) & set(new)
    raw.execute_many(_FORGET, _rows(thread_id, created_at, [entry for entry in old if entry not in kept]))
    raw.execute_many(_INSERT, _rows(thread_id, created_at, [entry for entry in new if entry not in kept]))


def forget(raw: Raw, thread_id: str, created_at: int, metadata: dict[str, Any]) -> None:
    """Delete what is indexed of a thread's `metadata` (the thread is deleted), in the caller's unit of work."""
    raw.execute_many(_FORGET, _rows(thread_id, created_at, entries(metadata)))


def _rows(thread_id: str, created_at: int, found: list[Entry]) -> list[dict[str, Any]]:
    return [{"thread_id": thread_id, "key": key, "value": value, "created_at": created_at} for key, value in found]
