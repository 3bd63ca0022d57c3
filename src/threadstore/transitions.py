"""Lifecycle moves as one compare-and-set write: UPDATE ... WHERE id = :id AND status IN (:allowed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql import ColumnElement

from threadstore.errors import ConflictError, InvalidTransitionError, NotFoundError
from threadstore.lifecycle import Machine


def changes(machine: Machine, target: str, now: int, table: sa.Table) -> dict[str, Any]:
    """The column values that entering `target` at `now` writes: status, stamp, cleared columns."""
    values: dict[str, Any] = {"status": target}
    stamp = machine.stamps.get(target)
    if stamp is not None:
        values[stamp] = sa.func.coalesce(table.c[stamp], now) if stamp in machine.keep_first else now
    for column in machine.clears(target):
        values[column] = None
    return values


def transition(
    connection: Connection,
    table: sa.Table,
    machine: Machine,
    object_id: str,
    target: str,
    now: int,
    *,
    sources: Iterable[str] | None = None,
    values: Mapping[str, Any] | None = None,
    where: Iterable[ColumnElement[bool]] = (),
) -> RowMapping:
    """Move one object to `target` and return its new row.

    Args:
        connection: the unit of work's connection.
        table: the object's table (with `id` and `status`).
        machine: its lifecycle.
        object_id: its id.
        target: the status to move to.
        now: the store clock's time, for the status's timestamp.
        sources: the statuses this verb moves from; by default every status the machine lets
            move to `target`. Must lie within those.
        values: further columns to set with the move.
        where: further conditions the row must meet (e.g. a claim's attempt number); a row that
            fails them but is in an allowed status is reported as ConflictError.

    Raises:
        NotFoundError: there is no such object.
        InvalidTransitionError: its status does not allow this move; nothing was written.
        ConflictError: it was in an allowed status but another writer moved it first.
    """
    allowed = machine.sources(target) if sources is None else frozenset(sources)
    if not allowed <= machine.sources(target):
        raise ValueError(f"{sorted(allowed)} -> {target} is not in the {machine.kind} machine")
    key = next(iter(table.primary_key.columns))
    statement = (
        sa.update(table)
        .where(key == object_id, table.c.status.in_(allowed), *where)
        .values(**changes(machine, target, now, table), **(values or {}))
        .returning(*table.c)
    )
    row = connection.execute(statement).first()
    if row is not None:
        return row._mapping
    current = connection.execute(sa.select(table.c.status).where(key == object_id)).scalar_one_or_none()
    if current is None:
        raise NotFoundError(machine.kind, object_id)
    if current in allowed:
        raise ConflictError(f"The {machine.kind} {object_id} was changed by another writer; try again.")
    raise InvalidTransitionError(machine.kind, object_id, current, target)
