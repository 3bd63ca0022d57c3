"""Cursor pages shared by every list: keyset pagination over (created_at, id), never OFFSET.

`after` and `before` are ids of objects in the same list. A page holds up to `limit` objects in
list order; `has_more` says whether more objects lie beyond the page in the direction it was
fetched (forward for `after` or no cursor, backward for `before` alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, Select

from threadstore.errors import ValidationError
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


def fetch_page(
    connection: Connection,
    query: Select[Any],
    table: sa.Table,
    scope: Sequence[ColumnElement[bool]],
    params: ListParams,
    load: Callable[[Mapping[Any, Any]], T],
) -> Page[T]:
    """Run `query` restricted to `scope` as one keyset page of `table`'s rows.

    Args:
        connection: the unit of work's connection.
        query: a SELECT over `table` (and whatever it joins) that `load` turns into objects.
        table: the listed table; it has `created_at` and `id` columns.
        scope: conditions that define the list (e.g. thread_id = ...); cursors must lie in it.
        params: validated list arguments.
        load: builds one object from one row.

    Raises:
        ValidationError: a cursor is not the id of an object in this list.
    """
    key = sa.tuple_(table.c.created_at, table.c.id)
    conditions = list(scope)
    backward = params.before is not None and params.after is None
    ascending = (params.order == "asc") != backward
    if params.after is not None:
        position = _cursor(connection, table, scope, params.after, "after")
        conditions.append(key > position if params.order == "asc" else key < position)
    if params.before is not None:
        position = _cursor(connection, table, scope, params.before, "before")
        conditions.append(key < position if params.order == "asc" else key > position)
    columns = (table.c.created_at, table.c.id)
    ordering = [c.asc() if ascending else c.desc() for c in columns]
    rows = connection.execute(query.where(*conditions).order_by(*ordering).limit(params.limit + 1)).all()
    has_more = len(rows) > params.limit
    items = [load(row._mapping) for row in rows[: params.limit]]
    if backward:
        items.reverse()
    return Page(data=items, has_more=has_more)


def _cursor(
    connection: Connection,
    table: sa.Table,
    scope: Sequence[ColumnElement[bool]],
    object_id: str,
    name: str,
) -> ColumnElement[Any]:
    found = connection.execute(
        sa.select(table.c.created_at).where(table.c.id == object_id, *scope)
    ).scalar_one_or_none()
    if found is None:
        raise ValidationError(f"{name}={object_id!r} is not the id of an object in this list.")
    return sa.tuple_(sa.literal(found), sa.literal(object_id))
