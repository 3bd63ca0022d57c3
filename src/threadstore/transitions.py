"""Lifecycle moves as one compare-and-set write: UPDATE ... WHERE id = :id AND status IN (:allowed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from threadstore.errors import ConflictError, InvalidTransitionError, NotFoundError
from threadstore.fastsql import Raw, Statement, one_of, raw_of
from threadstore.lifecycle import Machine


def changes(machine: Machine, target: str, now: Any, table: sa.Table) -> dict[str, Any]:
    """The column values that entering `target` at `now` writes: status, stamp, cleared columns."""
    values: dict[str, Any] = {"status": target}
    stamp = machine.stamps.get(target)
    if stamp is not None:
        values[stamp] = sa.func.coalesce(table.c[stamp], now) if stamp in machine.keep_first else now
    for column in machine.clears(target):
        values[column] = None
    return values


_MOVES: dict[tuple[Any, ...], Statement] = {}
_STATUS: dict[str, Statement] = {}


def transition(
    connection: Connection | Raw,
    table: sa.Table,
    machine: Machine,
    object_id: str,
    target: str,
    now: int,
    *,
    sources: Iterable[str] | None = None,
    values: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Move one object to `target` and return its new row.

    The UPDATE for each shape of move is compiled once (fastsql) and runs on the unit of work's
    DBAPI connection.

    Args:
        connection: the unit of work's connection.
        table: the object's table (its primary key and `status`).
        machine: its lifecycle.
        object_id: its id.
        target: the status to move to.
        now: the store clock's time, for the status's timestamp.
        sources: the statuses this verb moves from; by default every status the machine lets
            move to `target`. Must lie within those.
        values: further columns to set with the move.
        where: further column values the row must have (e.g. a claim's attempt number); a row
            that lacks them but is in an allowed status is reported as ConflictError.

    Raises:
        NotFoundError: there is no such object.
        InvalidTransitionError: its status does not allow this move; nothing was written.
        ConflictError: it was in an allowed status but another writer moved it first.
    """
    allowed = machine.sources(target) if sources is None else frozenset(sources)
    if not allowed <= machine.sources(target):
        raise ValueError(f"{sorted(allowed)} -> {target} is not in the {machine.kind} machine")
    values, where = values or {}, where or {}
    shape = (table.name, machine.kind, target, allowed, tuple(sorted(values)), tuple(sorted(where)))
    statement = _MOVES.get(shape)
    if statement is None:
        statement = _MOVES[shape] = _move_statement(table, machine, target, allowed, values, where)
    raw = raw_of(connection)
    params = {"object_id": object_id, "now": now}
    params.update({f"value_{name}": value for name, value in values.items()})
    params.update({f"where_{name}": value for name, value in where.items()})
    row = raw.first(statement, params)
    if row is not None:
        return row
    found = raw.first(_status_statement(table), {"object_id": object_id})
    if found is None:
        raise NotFoundError(machine.kind, object_id)
    if found["status"] in allowed:
        raise ConflictError(f"The {machine.kind} {object_id} was changed by another writer; try again.")
    raise InvalidTransitionError(machine.kind, object_id, found["status"], target)


def _key(table: sa.Table) -> sa.Column[Any]:
    return next(iter(table.primary_key.columns))


def _move_statement(
    table: sa.Table,
    machine: Machine,
    target: str,
    allowed: frozenset[str],
    values: Mapping[str, Any],
    where: Mapping[str, Any],
) -> Statement:
    now = sa.bindparam("now", type_=sa.BigInteger)
    sets = changes(machine, target, now, table)
    sets.update({name: sa.bindparam(f"value_{name}", type_=table.c[name].type) for name in values})
    conditions = [table.c[name] == sa.bindparam(f"where_{name}") for name in where]
    return Statement(
        sa.update(table)
        .where(_key(table) == sa.bindparam("object_id"), one_of(table.c.status, sorted(allowed)), *conditions)
        .values(**sets)
        .returning(*table.c)
    )


def _status_statement(table: sa.Table) -> Statement:
    statement = _STATUS.get(table.name)
    if statement is None:
        query = sa.select(table.c.status).where(_key(table) == sa.bindparam("object_id"))
        statement = _STATUS[table.name] = Statement(query)
    return statement
