"""Single-row reads and writes that every repository shares, each raising NotFoundError."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from threadstore.errors import NotFoundError
from threadstore.fastsql import Raw, Statement, exists


def fetch_one(connection: Connection, query: Select[Any], kind: str, object_id: str) -> Mapping[Any, Any]:
    """The only row `query` returns.

    Raises:
        NotFoundError: it returns none.
    """
    row = connection.execute(query).first()
    if row is None:
        raise NotFoundError(kind, object_id)
    return row._mapping


def require(connection: Connection, table: sa.Table, kind: str, object_id: str, *where: Any) -> None:
    """Check that `table` has a row with `object_id` (and `where`).

    Raises:
        NotFoundError: it has none.
    """
    query = sa.select(table.c.id).where(table.c.id == object_id, *where)
    if connection.execute(query).first() is None:
        raise NotFoundError(kind, object_id)


def update_one(
    connection: Connection, table: sa.Table, kind: str, object_id: str, values: Mapping[str, Any], *where: Any
) -> None:
    """Set `values` on the row of `table` with `object_id` (and `where`).

    Raises:
        NotFoundError: there is no such row.
    """
    statement = sa.update(table).where(table.c.id == object_id, *where).values(**values)
    if connection.execute(statement).rowcount != 1:
        raise NotFoundError(kind, object_id)


def delete_one(connection: Connection, table: sa.Table, kind: str, object_id: str) -> None:
    """Delete the row of `table` with `object_id`; foreign keys cascade to what lies under it.

    Raises:
        NotFoundError: there is no such row.
    """
    if connection.execute(sa.delete(table).where(table.c.id == object_id)).rowcount != 1:
        raise NotFoundError(kind, object_id)


def locked(query: Select[Any], for_update: bool) -> Select[Any]:
    """`query`, locking the rows it reads until the transaction ends when `for_update` is set."""
    return query.with_for_update() if for_update else query


class Getter:
    """One row of `table` by its id, optionally also by its `parent` column (the thread of a
    message) and locked for update; each of the four variants compiled once (fastsql)."""

    def __init__(self, table: sa.Table, kind: str, parent: str) -> None:
        self._kind = kind
        self._statements: dict[tuple[bool, bool], Statement] = {}
        for by_parent in (False, True):
            query = sa.select(table).where(table.c.id == sa.bindparam("id"))
            if by_parent:
                query = query.where(table.c[parent] == sa.bindparam("parent"))
            for lock in (False, True):
                self._statements[by_parent, lock] = Statement(locked(query, lock))

    def get(self, raw: Raw, object_id: str, parent_id: str | None, *, for_update: bool) -> dict[str, Any]:
        """The row with `object_id` (with `parent_id`, if given).

        Raises:
            NotFoundError: there is none.
        """
        params = {"id": object_id} if parent_id is None else {"id": object_id, "parent": parent_id}
        row = raw.first(self._statements[parent_id is not None, for_update], params)
        if row is None:
            raise NotFoundError(self._kind, object_id)
        return row


_EXISTS: dict[str, Statement] = {}


def raw_require(raw: Raw, table: sa.Table, kind: str, object_id: str) -> None:
    """`require` on the fast path (fastsql).

    Raises:
        NotFoundError: `table` has no row with `object_id`.
    """
    statement = _EXISTS.get(table.name)
    if statement is None:
        statement = _EXISTS[table.name] = exists(table)
    if raw.first(statement, {"id": object_id}) is None:
        raise NotFoundError(kind, object_id)
