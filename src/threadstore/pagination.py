"""Cursor pages shared by every list: keyset pagination over (created_at, id), or another key
such as an item's position in its conversation, never OFFSET.

`after` and `before` are ids of objects in the same list. A page holds up to `limit` objects in
list order; `has_more` says whether more objects lie beyond the page in the direction it was
fetched (forward for `after` or no cursor, backward for `before` alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement, Select

from threadstore.errors import ValidationError, shown
from threadstore.fastsql import Raw, Shapes, Statement
from threadstore.rows import Rows
from threadstore.validation import check_choice, check_int, check_optional_string

Order = Literal["asc", "desc"]
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class ApiObject(Protocol):
    """Anything a page can hold: it has an id and an API shape."""

    @property
    def id(self) -> str: ...

    def to_api(self) -> dict[str, Any]: ...


T = TypeVar("T", bound=ApiObject)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list, in list order."""

    data: list[T]
    has_more: bool

    @property
    def first_id(self) -> str | None:
        """The id of the first object, or None for an empty page."""
        return self.data[0].id if self.data else None

    @property
    def last_id(self) -> str | None:
        """The id of the last object, or None for an empty page."""
        return self.data[-1].id if self.data else None

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def to_api(self, **options: Any) -> dict[str, Any]:
        """The API's list object; `options` pass to each item's `to_api` (e.g. version="v1")."""
        return {
            "object": "list",
            "data": [item.to_api(**options) for item in self.data],
            "first_id": self.first_id,
            "last_id": self.last_id,
            "has_more": self.has_more,
        }


class Owner:
    """The object a list belongs to: the row of `table` whose id is the scope value `key`."""

    def __init__(self, table: sa.Table, kind: str, key: str) -> None:
        self.rows = Rows(table, kind)
        self.key = key


@dataclass(frozen=True, slots=True)
class ListParams:
    """Validated list arguments."""

    limit: int
    order: Order
    after: str | None
    before: str | None


def list_params(limit: object, order: object, after: object, before: object) -> ListParams:
    """Check the list arguments the API accepts.

    Raises:
        ValidationError: limit outside 1–100, order not asc/desc, a cursor that is not a string.
    """
    return ListParams(
        limit=check_int("limit", limit, minimum=1, maximum=MAX_LIMIT),
        order=check_choice("order", order, ("asc", "desc")),
        after=check_optional_string("after", after),
        before=check_optional_string("before", before),
    )


class Lister:
    """One kind of list: `query` over `table`, scoped by equality on `scope` columns (each may be
    left out of a call) and filtered by `where`. Its statements are compiled once per shape of
    call (fastsql): which scope columns, which order, which cursors. A list that belongs to an
    `owner` raises NotFoundError when the owner does not exist. Its order is that of the `key`
    columns, unique within the scope (by default creation time, then id)."""

    def __init__(
        self,
        query: Select[Any],
        table: sa.Table,
        scope: Sequence[str] = (),
        where: Sequence[ColumnElement[bool]] = (),
        owner: Owner | None = None,
        key: Sequence[str] = ("created_at", "id"),
    ) -> None:
        self._query = query
        self._key = tuple(key)
        self._table = table
        self._scope = tuple(scope)
        self._where = tuple(where)
        self._owner = owner
        self._statements = Shapes(self._build)

    def page(self, raw: Raw, scope: Mapping[str, Any], params: ListParams, load: Callable[[Any], T]) -> Page[T]:
        """One keyset page of the list.

        Raises:
            NotFoundError: the owner does not exist.
            ValidationError: a cursor is not the id of an object in this list.
        """
        if self._owner is not None and scope.get(self._owner.key) is None:
            self._require_owner(raw, scope)  # no owner is a missing one, never everyone's list
        keys = tuple(name for name in self._scope if scope.get(name) is not None)
        values: dict[str, Any] = {f"scope_{name}": scope[name] for name in keys}
        # A row of the list proves its owner exists (the foreign key cascades), so the owner is
        # only looked up when no cursor and no row was found: one query fewer on the common path.
        found_any = False
        for name, cursor in (("after", params.after), ("before", params.before)):
            if cursor is not None:
                found = raw.first(self._statement(("cursor", keys)), {**values, "cursor": cursor})
                if found is None:
                    self._require_owner(raw, scope)
                    raise ValidationError(f"{name}={shown(cursor)} is not the id of an object in this list.")
                values.update({f"{name}_{column}": found[column] for column in self._key})
                found_any = True
        backward = params.before is not None and params.after is None
        shape = ("page", keys, params.order, params.after is not None, params.before is not None)
        rows = raw.rows(self._statement(shape), {**values, "limit": params.limit + 1})
        if not rows and not found_any:
            self._require_owner(raw, scope)
        items = [load(row) for row in rows[: params.limit]]
        if backward:
            items.reverse()
        return Page(data=items, has_more=len(rows) > params.limit)

    def _require_owner(self, raw: Raw, scope: Mapping[str, Any]) -> None:
        if self._owner is not None:
            self._owner.rows.require(raw, scope[self._owner.key])

    def _statement(self, shape: tuple[Any, ...]) -> Statement:
        return self._statements[shape]

    def _build(self, shape: tuple[Any, ...]) -> Select[Any]:
        table = self._table
        conditions = [table.c[name] == sa.bindparam(f"scope_{name}") for name in shape[1]]
        conditions += self._where
        if shape[0] == "cursor":
            return sa.select(*(table.c[column] for column in self._key)).where(
                table.c.id == sa.bindparam("cursor"), *conditions
            )
        _, _, order, after, before = shape
        columns = [table.c[column] for column in self._key]
        key = sa.tuple_(*columns) if len(columns) > 1 else columns[0]
        for name, present, forward in (("after", after, True), ("before", before, False)):
            if present:
                bound = [sa.bindparam(f"{name}_{column.name}", type_=column.type) for column in columns]
                position = sa.tuple_(*bound) if len(bound) > 1 else bound[0]
                conditions.append(key > position if (order == "asc") == forward else key < position)
        ascending = (order == "asc") != (before and not after)
        ordering = [c.asc() if ascending else c.desc() for c in columns]
        limit = sa.bindparam("limit", type_=sa.Integer)
        return self._query.where(*conditions).order_by(*ordering).limit(limit)
