"""The index of LangGraph thread metadata, so that `threads.search(metadata={...})` finds a
user's newest threads without reading the others.

Each thread's top-level scalar metadata entries are kept in a table of their own
(`langgraph_thread_metadata`: thread, key, a token of the value, the thread's creation time),
written in the same transaction as the thread's create and metadata update and deleted with it
(foreign key). A search narrows the threads to those holding one scalar entry of its filter, read
from that table's index in creation order (so a page of a user's newest threads costs the same
among a thousand threads or a million), and then applies the rest of the filter to those threads
as before: nested values and lists keep the `@>` rules. On PostgreSQL, a GIN index
(jsonb_path_ops) on the metadata serves the filters that have no scalar entry; SQLite has none.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from threadstore.fastsql import Raw, Statement, insert
from threadstore.langgraph.models import thread_metadata

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


_INSERT = insert(thread_metadata)
_DELETE = Statement(sa.delete(thread_metadata).where(thread_metadata.c.thread_id == sa.bindparam("thread_id")))


def write(raw: Raw, thread_id: str, created_at: int, metadata: dict[str, Any], *, replace: bool = False) -> None:
    """Index a thread's metadata in the caller's unit of work; with `replace`, first drop what was
    indexed of it."""
    if replace:
        raw.execute(_DELETE, {"thread_id": thread_id})
    rows = [
        {"thread_id": thread_id, "key": key, "value": value, "created_at": created_at}
        for key, value in entries(metadata)
    ]
    raw.execute_many(_INSERT, rows)
