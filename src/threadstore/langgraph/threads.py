"""The LangGraph threads repository."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import ColumnElement

from threadstore.errors import ConflictError
from threadstore.events import log
from threadstore.fastsql import Shapes, unplanned
from threadstore.ids import new_uuid
from threadstore.langgraph import metadata_index
from threadstore.langgraph.api import LangGraphThread
from threadstore.langgraph.filters import Shape, contains, json_contains, needs_python, params_of, shape_of
from threadstore.langgraph.models import thread_metadata, threads
from threadstore.langgraph.states import THREAD_INITIAL_STATUS, THREAD_SORT_FIELDS, THREAD_STATUSES
from threadstore.rows import Rows
from threadstore.scope import Scope
from threadstore.types import IfExists, LangGraphThreadStatus, SortOrder, ThreadSortField
from threadstore.validation import UNSET, check_choice, check_int, check_json_object, check_list, check_uuid

SearchResult = list[LangGraphThread]
ROWS = Rows(threads, "langgraph thread", key="thread_id")


def _contains(name: str, shape: Shape) -> ColumnElement[bool]:
    """The filter on column `name` (filters.contains), with PostgreSQL's parameter left untyped:
    the server then takes it as JSONB and parses it once, where a VARCHAR cast to JSONB is parsed
    again for every row the scan reads (a generic plan cannot fold the cast)."""
    if shape == ("@>",):
        return threads.c[name].op("@>")(sa.cast(sa.bindparam(name), JSONB))
    return contains(threads.c[name], shape, name)


def _bound(name: str, type_: sa.types.TypeEngine[Any]) -> ColumnElement[Any]:
    return sa.bindparam(name, type_=type_)


def _search(shape: tuple[Any, ...]) -> sa.Select[Any]:
    """The search of one shape: filters on metadata and values, status, how many ids, the order,
    whether limit and offset apply in SQL (not when Python finishes nested filters), and whether
    the metadata index narrows the threads first and how its rows meet their threads (`narrowed`:
    None, "join" or "lateral"; see _narrowed)."""
    metadata, values, status, ids, sort_by, direction, paged, narrowed = shape
    conditions = [
        _contains(name, filt) for name, filt in (("metadata", metadata), ("values", values)) if filt is not None
    ]
    if status:
        conditions.append(threads.c.status == sa.bindparam("status", type_=sa.String))
    if ids is not None:
        conditions.append(threads.c.thread_id.in_([sa.bindparam(f"id_{i}", type_=sa.String) for i in range(ids)]))
    if narrowed:
        query, order, param = _narrowed(narrowed, conditions, sort_by)
    else:
        query, order, param = sa.select(threads).where(*conditions), (threads.c[sort_by], threads.c.thread_id), _bound
    ordering = [column.asc() if direction == "asc" else column.desc() for column in order]
    query = query.order_by(*ordering)
    if paged:
        query = query.limit(param("limit", sa.Integer())).offset(param("offset", sa.Integer()))
    return query


def _narrowed(
    narrowed: str, conditions: list[ColumnElement[bool]], sort_by: str
) -> tuple[sa.Select[Any], tuple[ColumnElement[Any], ...], Any]:
    """The threads holding the metadata index's entry (`narrow_key`, `narrow_value`) that meet
    `conditions`, the columns they are sorted by, and how the page's parameters are bound.

    Each index row meets the thread of its id and creation time: a row left by a thread deleted
    from outside (plain SQL) meets no thread, or only one made again with its id in the same
    microsecond. On PostgreSQL that thread is a LATERAL subquery of one row: as a plain join, the
    second equality makes the planner expect a fraction of a thread for all of a user's rows, and
    then read every thread into a hash join rather than walk the index for a page."""
    entry = thread_metadata
    # When the index both narrows and orders the threads, the best plan walks it whatever the entry
    # and the page: their parameters are hidden from PostgreSQL's planner, which then keeps one plan
    # instead of planning every call anew (fastsql.unplanned).
    param = unplanned if sort_by == "created_at" else _bound
    held = sa.and_(entry.c.key == param("narrow_key", sa.String()), entry.c.value == param("narrow_value", sa.String()))
    same = sa.and_(entry.c.thread_id == threads.c.thread_id, entry.c.created_at == threads.c.created_at)
    if narrowed == "lateral":
        thread = sa.select(threads).where(same, *conditions).limit(sa.literal_column("1")).lateral("thread")
        query, columns = sa.select(*thread.c).select_from(entry).join(thread, sa.true()).where(held), thread.c
    else:
        query, columns = sa.select(threads).join(entry, sa.and_(same, held)).where(*conditions), threads.c
    if sort_by == "created_at":  # the same values, read in the index's order
        return query, (entry.c.created_at, entry.c.thread_id), param
    return query, (columns[sort_by], columns.thread_id), param


_SEARCHES = Shapes(_search)


class LangGraphThreads:
    """Create, read, update, delete and search LangGraph threads."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def create(
        self, *, thread_id: str | None = None, metadata: dict[str, Any] | None = None, if_exists: IfExists = "raise"
    ) -> LangGraphThread:
        """Create an idle thread, with the caller's UUID or a new one.

        Args:
            thread_id: the thread's UUID; a new one when None.
            metadata: any JSON object.
            if_exists: when `thread_id` is taken, "raise" (ConflictError) or "do_nothing" (return the
                existing thread unchanged).

        Raises:
            ValidationError: not a UUID, bad metadata or an unknown `if_exists`; nothing is written.
            ConflictError: the id is taken and `if_exists` is "raise".
        """
        new_id = new_uuid() if thread_id is None else check_uuid("thread_id", thread_id)
        meta = check_json_object("metadata", metadata)
        policy = check_choice("if_exists", if_exists, ("raise", "do_nothing"))
        with self._scope.write() as raw:
            existing = ROWS.find(raw, new_id)
            if existing is not None:
                if policy == "raise":
                    raise ConflictError(f"Thread {new_id} already exists.")
                return LangGraphThread.from_row(existing)
            now = self._scope.now_micros()
            values = {
                "thread_id": new_id,
                "created_at": now,
                "updated_at": now,
                "metadata": meta,
                "status": THREAD_INITIAL_STATUS,
                "values": None,
            }
            metadata_index.create_thread(raw, values, now)
            return LangGraphThread.from_row(values)

    def get(self, thread_id: str, *, for_update: bool = False) -> LangGraphThread:
        """The thread with this id. In a transaction, `for_update` locks it until the transaction ends.

        Args:
            thread_id: the thread.
            for_update: lock it until the transaction ends.

        Raises:
            NotFoundError: there is none.
        """
        with self._scope.read() as raw:
            return LangGraphThread.from_row(ROWS.get(raw, thread_id, for_update=for_update))

    def update(
        self, thread_id: str, *, metadata: dict[str, Any] | None = UNSET, values: dict[str, Any] | None = UNSET
    ) -> LangGraphThread:
        """Merge `metadata` into the thread's (as the API's PATCH does) and/or replace its `values`.

        Args:
            thread_id: the thread.
            metadata: a JSON object whose keys replace the same keys of the thread's metadata; left out or
                None, the metadata is unchanged.
            values: a JSON object that replaces the thread's values; None clears them; left out, they are
                unchanged.

        Raises:
            ValidationError: bad metadata or values; nothing is written.
            NotFoundError: there is no such thread.
        """
        patch = None if metadata is UNSET else check_json_object("metadata", metadata)
        state = UNSET if values is UNSET else (None if values is None else check_json_object("values", values))
        with self._scope.write() as raw:
            # Locked, so that two merges of one thread's metadata cannot lose each other's keys.
            current = ROWS.get(raw, thread_id, for_update=True)
            changes: dict[str, Any] = {"updated_at": self._scope.now_micros()}
            if patch is not None:
                changes["metadata"] = {**current["metadata"], **patch}
            if state is not UNSET:
                changes["values"] = state
            if patch is not None:
                metadata_index.update(raw, thread_id, current["created_at"], current["metadata"], changes["metadata"])
            return LangGraphThread.from_row(ROWS.update(raw, thread_id, changes))

    def list(self, *, limit: int = 10, offset: int = 0) -> SearchResult:
        """Threads, newest first, with limit/offset (a search without filters).

        Args:
            limit: the most threads to return, 1 to 1000 (default 10).
            offset: how many threads to skip first (default 0).

        Raises:
            ValidationError: a bad limit or offset.
        """
        return self.search(limit=limit, offset=offset)

    def delete(self, thread_id: str) -> None:
        """Delete a thread and its runs.

        Args:
            thread_id: the thread.

        Raises:
            NotFoundError: there is no such thread.
        """
        with self._scope.write() as raw:
            deleted = ROWS.pop(raw, thread_id)
            metadata_index.forget(raw, thread_id, deleted["created_at"], deleted["metadata"])
            log.forget_thread(raw, thread_id)

    def search(
        self,
        *,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        status: LangGraphThreadStatus | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: ThreadSortField = "created_at",
        sort_order: SortOrder = "desc",
    ) -> SearchResult:
        """Threads whose metadata and values contain the given ones, with the given status and ids,
        sorted and paged with limit/offset as the LangGraph API does.

        Args:
            metadata: a JSON object the thread's metadata must contain (as PostgreSQL's `@>`), if given.
            values: a JSON object the thread's values must contain, if given.
            status: idle, busy, interrupted or error, if given.
            ids: the thread UUIDs to choose from, if given.
            limit: the most threads to return, 1 to 1000 (default 10).
            offset: how many threads to skip first (default 0).
            sort_by: "thread_id", "status", "created_at" (the default) or "updated_at".
            sort_order: "asc" or "desc" (the default).

        Raises:
            ValidationError: a bad filter, status, limit, offset or sort.
        """
        wanted = {
            "metadata": None if metadata is None else check_json_object("metadata", metadata),
            "values": None if values is None else check_json_object("values", values),
        }
        params: dict[str, Any] = {}
        if status is not None:
            params["status"] = check_choice("status", status, THREAD_STATUSES)
        chosen = None if ids is None else [check_uuid("ids", i) for i in check_list("ids", ids)]
        params.update({f"id_{i}": thread_id for i, thread_id in enumerate(chosen or ())})
        sort = check_choice("sort_by", sort_by, THREAD_SORT_FIELDS)
        direction = check_choice("sort_order", sort_order, ("asc", "desc"))
        first = check_int("offset", offset, minimum=0)
        count = check_int("limit", limit, minimum=1, maximum=1000)
        dialect = self._scope.dialect
        filters = {name: filt for name, filt in wanted.items() if filt}
        narrow = metadata_index.narrowing(filters["metadata"]) if "metadata" in filters else None
        if narrow is not None:
            # The index matches that entry exactly (equal tokens are equal values): the rest of
            # the filter still applies to the threads it finds. Tested again in SQL, the entry
            # would cost PostgreSQL its plan: in the `@>` filter, the planner reads all of a
            # user's threads through the GIN index and sorts them; as an equality, it expects
            # the test to drop most threads and scans them all.
            params.update(narrow_key=narrow[0], narrow_value=narrow[1])
            rest = {key: value for key, value in filters.pop("metadata").items() if key != narrow[0]}
            if rest:
                filters["metadata"] = rest
        for name, filt in filters.items():
            params.update(params_of(filt, dialect, name))
        nested = {name: filt for name, filt in filters.items() if needs_python(filt, dialect)}
        shape = (
            *(shape_of(filters[name], dialect) if name in filters else None for name in ("metadata", "values")),
            status is not None,
            None if chosen is None else len(chosen),
            sort,
            direction,
            not nested,
            None if narrow is None else ("lateral" if dialect == "postgresql" else "join"),
        )
        with self._scope.read() as raw:
            if not nested:
                rows = raw.rows(_SEARCHES[shape], {**params, "limit": count, "offset": first})
                return [LangGraphThread.from_row(row) for row in rows]
            # SQLite cannot test nested containment in SQL: filter here, before the page is cut.
            found = [
                LangGraphThread.from_row(row)
                for row in raw.rows(_SEARCHES[shape], params)
                if all(json_contains(row[name], filt) for name, filt in nested.items())
            ]
            return found[first : first + count]
