"""The one writer of status. Every create of an object that has a status, every move of one object,
every move of many (claims, sweeps, cascades, multitask strategies) and LangGraph's derived thread
status is written here, and nowhere else: this is where the event log writes.

A move is a compare-and-set: ``UPDATE … WHERE id = :id AND status IN (:sources)``, where the
sources are the verb's in the machine's data (`Machine.verbs`). The columns a move sets (status,
its stamp, the columns the new status may not hold, the machine's `touches`) come from the machine.
Each shape of statement is compiled once (fastsql).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import ColumnElement

from threadstore.errors import ConflictError, InvalidTransitionError, NotFoundError
from threadstore.events import log
from threadstore.fastsql import ONE, Insert, Raw, Statement, one_of, word
from threadstore.langgraph import models as langgraph
from threadstore.langgraph.states import BUSY_RUN_STATUSES, THREAD_STATUS_AFTER_RUN
from threadstore.lifecycle import Machine
from threadstore.ordering import latest, next_in_order

Row = dict[str, Any]


def create(
    raw: Raw,
    insert: Insert,
    row: Mapping[str, Any],
    now: int,
    machine: Machine | None = None,
    *,
    announce: bool = True,
    built: log.ApiObject | None = None,
) -> None:
    """Write a new object (`row`, every column) with `insert`, and its events at `now` (the
    family's clock); with a `machine`, its status must be one the machine creates objects in.
    Not to `announce` yet is for a caller that then calls `announce_created` with a row that
    holds more than the table's columns (a step's details). `built`: the object's API object,
    if the caller has built it from `row` already (its events' data is its `to_api()`)."""
    if machine is not None and row["status"] not in machine.creatable:
        raise ValueError(f"a {machine.kind} is not created {row['status']}")
    raw.execute(insert, row)
    if announce and raw.events:  # checked here too: a store without events pays no call for them
        log.created(raw, insert.table, (row,), now, None if built is None else (built,))


def create_many(
    raw: Raw, insert: Insert, rows: Sequence[Mapping[str, Any]], now: int, machine: Machine | None = None
) -> None:
    """`create` for many rows at once (an import)."""
    if machine is not None and any(row["status"] not in machine.creatable for row in rows):
        raise ValueError(f"a {machine.kind} is created {sorted(machine.creatable)}")
    raw.execute_many(insert, rows)
    if raw.events:
        log.created(raw, insert.table, rows, now)


def changes(machine: Machine, target: str, now: Any, table: sa.Table) -> dict[str, Any]:
    """The column values that entering `target` at `now` writes: status, stamp (never earlier
    than the stamps it follows), cleared columns, the columns the machine touches on every move,
    and the object's place in the order of ended objects. The status and the NULLs are written
    into the SQL: bound, each would be one more parameter sent on every call (see fastsql.one_of)."""
    values: dict[str, Any] = {"status": word(target)}
    stamp = machine.stamps.get(target)
    if stamp is not None:
        at = latest(now, *(sa.func.coalesce(table.c[c], now) for c in machine.follows)) if machine.follows else now
        values[stamp] = sa.func.coalesce(table.c[stamp], at) if stamp in machine.keep_first else at
    for column in machine.clears(target):
        values[column] = sa.null()
    for column in machine.touches:
        values[column] = now
    if machine.ordered is not None and target in machine.terminal:
        values[machine.ordered] = next_in_order(table.c[machine.ordered])
    return values


def _only_target(machine: Machine, verb: str) -> str:
    targets = machine.verbs[verb]
    if len(targets) != 1:
        raise ValueError(f"{machine.kind} verb {verb} moves to {sorted(targets)}: name the target")
    return next(iter(targets))


_MOVES: dict[tuple[Any, ...], Statement] = {}
_STATUS: dict[str, Statement] = {}


def move(
    raw: Raw,
    table: sa.Table,
    machine: Machine,
    verb: str,
    object_id: str,
    now: int,
    *,
    target: str | None = None,
    values: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
    announce: bool = True,
) -> Row:
    """Move one object by `verb`, write its event, and return its new row.

    Args:
        raw: the unit of work's executor.
        table: the object's table (its primary key and `status`).
        machine: its lifecycle.
        verb: the verb in the machine's data, which says the statuses it moves from.
        object_id: its id.
        now: the store clock's time, for the status's timestamp.
        target: the status to move to; needed only when the verb has several.
        values: further columns to set with the move.
        where: further column values the row must have (e.g. a claim's attempt number); a row
            that lacks them but is in an allowed status is reported as ConflictError.
        announce: write the move's event now; False for a caller that writes more of the object
            in the same unit first and then calls `announce_moved` (a step's usage and error).

    Raises:
        NotFoundError: there is no such object.
        InvalidTransitionError: its status does not allow this move; nothing was written.
        ConflictError: it was in an allowed status but another writer moved it first.
    """
    target = _only_target(machine, verb) if target is None else target
    allowed = machine.verb_sources(verb, target)
    values, where = values or {}, where or {}
    shape = (table.name, machine.kind, target, allowed, tuple(sorted(values)), tuple(sorted(where)))
    statement = _MOVES.get(shape)
    if statement is None:
        statement = _MOVES[shape] = _move_statement(table, machine, target, allowed, values, where)
    params = {"object_id": object_id, "now": now}
    params.update({f"value_{name}": value for name, value in values.items()})
    params.update({f"where_{name}": value for name, value in where.items()})
    row = raw.first(statement, params)
    if row is not None:
        if announce and raw.events:
            log.moved(raw, table, (row,), now)
        return row
    found = raw.first(_status_statement(table), {"object_id": object_id})
    if found is None:
        raise NotFoundError(machine.kind, object_id)
    if found["status"] in allowed:
        raise ConflictError(f"The {machine.kind} {object_id} was changed by another writer; try again.")
    raise refused(machine, verb, object_id, found["status"], target)


def refused(machine: Machine, verb: str, object_id: str, status: str, target: str) -> InvalidTransitionError:
    """The error for `verb` refused on an object in `status`; it names the statuses the verb
    needs, from the machine's data ("submit_tool_outputs needs run run_… in requires_action;
    it is queued"). A verb that moves no status (a heartbeat) needs the object in `target`."""
    sources = machine.verbs.get(verb, {}).get(target) or frozenset({target})
    return InvalidTransitionError(machine.kind, object_id, status, target, verb=verb, sources=sources)


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


class Bulk:
    """A move by `verb` to `target` of every row of `table` that `where` selects (and whose status
    the verb moves from), as one statement compiled once. Parameter `now` is the time of the move.

    Args:
        table: the objects' table.
        machine: their lifecycle.
        verb: the verb in the machine's data.
        target: the status to move to; needed only when the verb has several.
        where: the rows to move, beyond their status (bind parameters are the caller's).
        values: further columns to set, as SQL expressions.
    """

    def __init__(
        self,
        table: sa.Table,
        machine: Machine,
        verb: str,
        *,
        target: str | None = None,
        where: Sequence[ColumnElement[bool]] = (),
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self.table = table
        self.target = _only_target(machine, verb) if target is None else target
        sources = machine.verb_sources(verb, self.target)
        now = sa.bindparam("now", type_=sa.BigInteger)
        sets = {**changes(machine, self.target, now, table), **(values or {})}
        self.statement = Statement(
            sa.update(table).where(one_of(table.c.status, sorted(sources)), *where).values(**sets).returning(*table.c)
        )


def move_all(
    raw: Raw, bulk: Bulk, now: int, params: Mapping[str, Any] | None = None, *, announce: bool = True
) -> list[Row]:
    """Run a bulk move at `now` with the parameters of its selection, write each moved row's
    event (unless not to `announce` yet, as in `move`), and return the moved rows."""
    rows = raw.rows(bulk.statement, {**(params or {}), "now": now})
    if announce and raw.events:
        log.moved(raw, bulk.table, rows, now)
    return rows


def announce_created(
    raw: Raw, table: sa.Table, rows: Sequence[Row], now: int, built: Sequence[log.ApiObject] | None = None
) -> None:
    """Write the events of objects created with `announce=False` (`built`: their API objects, if
    the caller has built them from `rows` already)."""
    log.created(raw, table, rows, now, built)


def announce_moved(
    raw: Raw, table: sa.Table, rows: Sequence[Row], now: int, built: Sequence[log.ApiObject] | None = None
) -> None:
    """Write the events of moves made with `announce=False`, once the rest of each object is
    written (`built` as for `announce_created`)."""
    log.moved(raw, table, rows, now, built)


# LangGraph: a thread is busy while a run is pending or running, else it shows what the run that
# ended last left (THREAD_STATUS_AFTER_RUN), else idle. Derived in one UPDATE per thread, written
# only when it changes.
def _derived_thread_status() -> ColumnElement[str]:
    runs = langgraph.runs
    thread_id = sa.bindparam("thread_id", type_=sa.String)
    busy = sa.exists().where(runs.c.thread_id == thread_id, one_of(runs.c.status, sorted(BUSY_RUN_STATUSES)))
    # The statuses and the limit written into the SQL, not bound (see fastsql.one_of).
    after = sa.case(*((runs.c.status == word(run), word(thread)) for run, thread in THREAD_STATUS_AFTER_RUN.items()))
    last = (
        sa.select(after)
        .where(runs.c.thread_id == thread_id)
        .order_by(langgraph.ORDER.desc(), runs.c.run_id.desc())
        .limit(ONE)
        .scalar_subquery()
    )
    return sa.case((busy, word("busy")), else_=sa.func.coalesce(last, word("idle")))


def _refresh_statement() -> Statement:
    threads = langgraph.threads
    status = _derived_thread_status()
    return Statement(
        sa.update(threads)
        .where(threads.c.thread_id == sa.bindparam("thread_id"), threads.c.status != status)
        .values(status=status, updated_at=sa.bindparam("now", type_=sa.BigInteger))
    )


_REFRESH = _refresh_statement()


def refresh_thread_status(raw: Raw, thread_ids: Iterable[str], now: int) -> None:
    """Write the derived status of each LangGraph thread, moving `updated_at` when it changes."""
    for thread_id in sorted(set(thread_ids)):
        raw.execute(_REFRESH, {"thread_id": thread_id, "now": now})
