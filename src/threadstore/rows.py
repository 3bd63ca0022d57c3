"""Single-row reads, updates and deletes that every repository shares, each raising NotFoundError."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, Select

from threadstore.errors import NotFoundError
from threadstore.fastsql import Raw, Shapes, Statement
from threadstore.validation import check_bool


def locked(query: Select[Any], for_update: bool) -> Select[Any]:
    """`query`, locking the rows it reads until the transaction ends when `for_update` is set."""
    return query.with_for_update() if for_update else query


class Rows:
    """The rows of `table` one at a time, by their `key` column, optionally also by their
    `parent` column (the thread of a message) and always within `where` (e.g. not deleted).
    Each shape of statement is compiled once (fastsql).

    Attributes:
        kind: the object's name in NotFoundError.
    """

    def __init__(
        self,
        table: sa.Table,
        kind: str,
        *,
        key: str = "id",
        parent: str | None = None,
        where: Sequence[ColumnElement[bool]] = (),
        columns: Sequence[sa.Column[Any]] | None = None,
    ) -> None:
        self.kind = kind
        self._table = table
        self._key = key
        self._parent = parent
        self._where = tuple(where)
        self._columns = tuple(columns if columns is not None else table.c)
        self._statements = Shapes(self._build)

    def get(
        self, raw: Raw, object_id: str, parent_id: str | None = None, *, for_update: bool = False
    ) -> dict[str, Any]:
        """The row with `object_id` (with `parent_id`, if given); `for_update` locks it.

        Raises:
            NotFoundError: there is none.
            ValidationError: `for_update` is not a bool.
        """
        shape = ("get", parent_id is not None, check_bool("for_update", for_update))
        return self._found(raw.first(self._statement(shape), self._params(object_id, parent_id)), object_id)

    def find(self, raw: Raw, object_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
        """The row with `object_id`, or None.

        Raises:
            ValidationError: `for_update` is not a bool.
        """
        return raw.first(self._statement(("get", False, check_bool("for_update", for_update))), {"key": object_id})

    def require(self, raw: Raw, object_id: str, parent_id: str | None = None) -> None:
        """Check that the row exists.

        Raises:
            NotFoundError: it does not.
        """
        shape = ("exists", parent_id is not None)
        self._found(raw.first(self._statement(shape), self._params(object_id, parent_id)), object_id)

    def update(
        self, raw: Raw, object_id: str, values: Mapping[str, Any], parent_id: str | None = None
    ) -> dict[str, Any]:
        """Set `values` on the row and return it as it now is.

        Raises:
            NotFoundError: there is no such row.
        """
        shape = ("update", parent_id is not None, tuple(sorted(values)))
        params = self._params(object_id, parent_id)
        params.update({f"value_{name}": value for name, value in values.items()})
        return self._found(raw.first(self._statement(shape), params), object_id)

    def delete(self, raw: Raw, object_id: str, parent_id: str | None = None) -> None:
        """Delete the row; foreign keys cascade to what lies under it.

        Raises:
            NotFoundError: there is no such row.
        """
        shape = ("delete", parent_id is not None, False)
        if raw.rowcount(self._statement(shape), self._params(object_id, parent_id)) != 1:
            raise NotFoundError(self.kind, object_id)

    def pop(self, raw: Raw, object_id: str, parent_id: str | None = None) -> dict[str, Any]:
        """Delete the row and return it as it was, in the one statement (DELETE ... RETURNING).

        Raises:
            NotFoundError: there is no such row.
        """
        shape = ("delete", parent_id is not None, True)
        return self._found(raw.first(self._statement(shape), self._params(object_id, parent_id)), object_id)

    def _found(self, row: dict[str, Any] | None, object_id: str) -> dict[str, Any]:
        if row is None:
            raise NotFoundError(self.kind, object_id)
        return row

    def _params(self, object_id: str, parent_id: str | None) -> dict[str, Any]:
        return {"key": object_id} if parent_id is None else {"key": object_id, "parent": parent_id}

    def _statement(self, shape: tuple[Any, ...]) -> Statement:
        return self._statements[shape]

    def _build(self, shape: tuple[Any, ...]) -> Any:
        table = self._table
        conditions = [table.c[self._key] == sa.bindparam("key"), *self._where]
        if shape[1]:
            assert self._parent is not None
            conditions.append(table.c[self._parent] == sa.bindparam("parent"))
        if shape[0] == "get":
            return locked(sa.select(*self._columns).where(*conditions), shape[2])
        if shape[0] == "exists":
            return sa.select(table.c[self._key]).where(*conditions)
        if shape[0] == "update":
            values = {name: sa.bindparam(f"value_{name}", type_=table.c[name].type) for name in shape[2]}
            return sa.update(table).where(*conditions).values(values).returning(*self._columns)
        deleted = sa.delete(table).where(*conditions)
        return deleted.returning(*self._columns) if shape[2] else deleted
