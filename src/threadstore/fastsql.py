"""Hot paths at the speed of hand-written SQL: a Core statement compiled once per dialect and run
on the DBAPI connection, with JSON and boolean columns converted as SQLAlchemy would.

The SQLModel tables stay the schema and Core builds every statement; only the per-call work
SQLAlchemy repeats (building the statement, its cache key, the execution context and result
processing) is skipped. A statement runs in the caller's unit of work: `Raw` wraps the DBAPI
connection of that unit.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.sql.visitors import InternalTraversal

Decoder = Callable[[Any], Any] | None


def _decode_json(value: Any) -> Any:
    """Stored JSON text (or bytes) as Python values: orjson's, which are json.loads's for every
    value threadstore writes (64-bit integers, finite floats, no lone surrogates).

    Raises:
        json.JSONDecodeError: the text is not JSON (orjson.JSONDecodeError is one).
    """
    return None if value is None else orjson.loads(value)


def _decode_bool(value: Any) -> Any:
    return value if value is None else bool(value)


# Column types whose values both drivers hand back as SQLAlchemy would, without conversion.
_PLAIN_TYPES = (sa.String, sa.Integer, sa.Float)


def _decoder(column_type: sa.types.TypeEngine[Any], dialect: Dialect) -> Decoder:
    """How to decode a result column of `column_type`: SQLite hands back JSON as text and booleans
    as integers; psycopg decodes both itself.

    Raises:
        TypeError: the executor does not know how to read this type; it refuses rather than
            return values SQLAlchemy would have converted.
    """
    if isinstance(column_type, sa.TypeDecorator) and not _converts_results(column_type):
        column_type = column_type.impl_instance  # e.g. SQLModel's AutoString: a String
    if _is_json(column_type):
        return _decode_json if dialect.name == "sqlite" else None
    if isinstance(column_type, sa.Boolean):
        return _decode_bool if dialect.name == "sqlite" else None
    if isinstance(column_type, _PLAIN_TYPES):
        return None
    raise TypeError(f"fastsql cannot decode a column of type {column_type!r}; cast it to a type it knows.")


def _converts_results(column_type: sa.TypeDecorator[Any]) -> bool:
    return type(column_type).process_result_value is not sa.TypeDecorator.process_result_value


def _is_json(column_type: sa.types.TypeEngine[Any]) -> bool:
    return isinstance(column_type, sa.JSON) or isinstance(getattr(column_type, "impl", None), sa.JSON)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled for one dialect."""

    sql: str
    defaults: dict[str, Any]  # values of the statement's own literals (e.g. status IN (...))
    json_params: frozenset[str]  # parameters sent as JSON text
    positions: tuple[str, ...] | None  # parameter order for positional paramstyles
    take: Callable[[Mapping[str, Any]], Any] | None  # the positional values from a call's parameters, in one C call
    json_at: tuple[int, ...]  # where JSON parameters sit among the positional values
    names: tuple[str, ...]  # result column names
    decoders: tuple[tuple[int, Callable[[Any], Any]], ...]  # (index, decode) for columns that need it


class Statement:
    """A Core statement, compiled on first use for each dialect."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._prepared: dict[str, Prepared] = {}

    def prepare(self, dialect: Dialect) -> Prepared:
        prepared = self._prepared.get(dialect.name)
        if prepared is None:
            prepared = self._prepared[dialect.name] = _prepare(self._statement, dialect)
        return prepared

    def bind(self, prepared: Prepared, params: Mapping[str, Any]) -> Any:
        values = {**prepared.defaults, **params} if prepared.defaults else params
        if prepared.take is not None:
            taken = prepared.take(values)
            if not prepared.json_at:
                return taken
            encoded = list(taken)
            for index in prepared.json_at:
                encoded[index] = _json_text(encoded[index])
            return encoded
        encode = prepared.json_params
        if encode:
            return {**values, **{name: _json_text(values[name]) for name in encode if name in values}}
        return values


class Shapes:
    """Statements compiled once per shape of call: `build(shape)` makes the Core statement of a
    shape (a hashable description: which columns, which order, how many values)."""

    MAX = 10_000  # shapes come from code, but an IN list's length comes from the caller

    def __init__(self, build: Callable[[Any], ClauseElement]) -> None:
        self._build = build
        self._statements: dict[Any, Statement] = {}

    def __getitem__(self, shape: Any) -> Statement:
        statement = self._statements.get(shape)
        if statement is None:
            statement = Statement(self._build(shape))
            if len(self._statements) < self.MAX:
                self._statements[shape] = statement
        return statement


def _prepare(statement: ClauseElement, dialect: Dialect) -> Prepared:
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    if any(bind.expanding for bind in compiled.binds.values()):
        # An IN list parameter is rendered per call; give each value a parameter, or use one_of.
        raise TypeError(f"fastsql cannot run a statement with an expanding IN parameter: {compiled.string}")
    columns = list(getattr(statement, "exported_columns", ()))
    json_params = frozenset(name for name, bind in compiled.binds.items() if _is_json(bind.type))
    positions = tuple(compiled.positiontup or ()) if dialect.positional else None
    return Prepared(
        sql=compiled.string,
        defaults={name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required},
        json_params=json_params,
        positions=positions,
        take=None if positions is None else _taker(positions),
        json_at=tuple(index for index, name in enumerate(positions or ()) if name in json_params),
        names=tuple(c.name for c in columns),
        decoders=tuple((i, d) for i, c in enumerate(columns) if (d := _decoder(c.type, dialect)) is not None),
    )


def _taker(positions: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of `positions` from a mapping, as a tuple (itemgetter gives one value alone
    for one name)."""
    if len(positions) == 1:
        (name,) = positions
        return lambda values: (values[name],)
    if not positions:
        return lambda values: ()
    return itemgetter(*positions)


def _json_text(value: Any) -> Any:
    return None if value is None else dumps(value)


def _plain_float(value: Any) -> Any:
    """What orjson does not encode itself but json.dumps does: a float subclass, which check_json
    lets through, as its float. Anything else stays refused, as json.dumps refuses it."""
    if isinstance(value, float):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Dates and dataclasses go to _plain_float, which refuses them as json.dumps does.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> str:
    """`value` as compact JSON text, UTF-8 unescaped: the one encoder of every JSON value
    threadstore stores, binds or sends (orjson's: a run's 800 bytes in 0.6 µs, json.dumps's in 5).

    Raises:
        TypeError: `value` holds something that is not JSON data (orjson.JSONEncodeError is one).
    """
    return orjson.dumps(value, default=_plain_float, option=_OPTIONS).decode()


Reconnect = Callable[[BaseException, Any, Any], Any]  # (error, cursor, connection) -> a fresh connection or None


class Raw:
    """The executor: the DBAPI connection of one unit of work, running compiled statements.

    `reconnect`, if given, is asked once, when the unit's first statement fails, for a fresh
    connection to run that statement on instead (see scope.RawUnit): a connection the server
    dropped between two units is replaced without a round trip spent checking every checkout.
    It returns None when the failure was not a lost connection, and the error stands.
    """

    __slots__ = ("_cursor", "_reconnect", "connection", "dialect", "events", "pending")

    def __init__(
        self, connection: Any, dialect: Dialect, reconnect: Reconnect | None = None, *, events: bool = True
    ) -> None:
        self.connection = connection
        self.dialect = dialect
        self._reconnect = reconnect
        self.events = events  # whether this unit's changes write their events (Store(events=...))
        self.pending: list[tuple[Any, ...]] = []  # the unit's events (events.log), written just before it commits
        self._cursor: Any = None

    def cursor(self) -> Any:
        """The unit's one DBAPI cursor: every statement runs on it, each after the one before has
        been read. A cursor per statement costs, on AsyncStore's PostgreSQL driver, an extra
        switch out of the greenlet and back to open it."""
        if self._cursor is None:
            self._cursor = self.connection.cursor()
        return self._cursor

    def close_cursor(self) -> None:
        """Close the unit's cursor, and with it a statement still under way on it (an UPDATE ...
        RETURNING read in part when an error or an interrupt cut the unit short). Kept alive by a
        saved traceback, such a statement would outlive its unit on the connection, and SQLite
        refuses every later COMMIT of the connection while a writing statement is under way."""
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            cursor.close()

    def _run(self, sql: str, params: Any) -> Any:
        cursor = self.cursor()
        if self._reconnect is None:
            cursor.execute(sql, params)
            return cursor
        reconnect, self._reconnect = self._reconnect, None  # only the unit's first statement
        try:
            cursor.execute(sql, params)
        except BaseException as error:
            fresh = reconnect(error, cursor, self.connection)
            if fresh is None:
                raise
            self.connection, self._cursor = fresh, None
            cursor = self.cursor()
            cursor.execute(sql, params)
        return cursor

    def execute(self, statement: Statement, params: Mapping[str, Any] | None = None) -> Any:
        """Run `statement`; return the DBAPI cursor."""
        prepared = statement.prepare(self.dialect)
        return self._run(prepared.sql, statement.bind(prepared, params or {}))

    def execute_values(self, statement: Statement, values: Sequence[Any]) -> Any:
        """Run `statement` with `values`: its parameters already in the order its SQL takes them
        (a positional paramstyle) and already encoded; return the DBAPI cursor."""
        return self._run(statement.prepare(self.dialect).sql, values)

    def execute_many(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run `statement` once for each of `rows` (an `Insert` batches them; see there).

        psycopg runs them in a pipeline; cut short there by an interrupt, it may report its own
        failure to leave the pipeline (an AssertionError, a psycopg error) with the interrupt as
        its context. The interrupt is what the caller gets, as from any other statement.
        """
        if not rows:
            return
        handled = sys.exception()  # an interrupt being handled as the call began is not the call's
        try:
            self._execute_many(statement, rows)
        except Exception as error:
            interrupt = interrupt_behind(error)
            if interrupt is None or interrupt is handled:
                raise
            raise interrupt from None

    def _execute_many(self, statement: Statement, rows: Sequence[Mapping[str, Any]]) -> None:
        # One row is one statement: sqlite3's executemany and psycopg's pipeline cost more. The
        # first statement of the unit goes through `_run`, which sends it.
        if self._reconnect is not None or len(rows) == 1:
            self.execute(statement, rows[0])
            rows = rows[1:]
        if not rows:
            return
        cursor = self.cursor()
        if isinstance(statement, Insert):
            statement.execute_many(cursor, self.dialect, rows)
        else:
            prepared = statement.prepare(self.dialect)
            cursor.executemany(prepared.sql, [statement.bind(prepared, row) for row in rows])

    def rows(self, statement: Statement, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run `statement` and return its rows as dicts of decoded values."""
        prepared = statement.prepare(self.dialect)
        cursor = self._run(prepared.sql, statement.bind(prepared, params or {}))
        return [_row(prepared, values) for values in cursor.fetchall()]

    def first(self, statement: Statement, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """Run `statement` and return its first row as a dict of decoded values, or None."""
        prepared = statement.prepare(self.dialect)
        values = self._run(prepared.sql, statement.bind(prepared, params or {})).fetchone()
        return None if values is None else _row(prepared, values)

    def rowcount(self, statement: Statement, params: Mapping[str, Any] | None = None) -> int:
        """Run `statement` (an UPDATE or DELETE) and return how many rows it changed."""
        return int(self.execute(statement, params).rowcount)


def interrupt_behind(error: BaseException | None) -> BaseException | None:
    """The interrupt (a BaseException that is not an Exception, as KeyboardInterrupt) that `error`
    is, or was raised while handling; None if there is none."""
    while error is not None:
        if not isinstance(error, Exception):
            return error
        error = error.__cause__ or error.__context__
    return None


def _row(prepared: Prepared, values: Sequence[Any]) -> dict[str, Any]:
    if prepared.decoders:
        values = list(values)
        for index, decode in prepared.decoders:
            values[index] = decode(values[index])
    return dict(zip(prepared.names, values, strict=True))


class Insert(Statement):
    """INSERT of a whole row of `table`, every column a parameter named after it.

    Where the driver binds by position (SQLite), many rows go `size` rows to one multi-row VALUES
    statement: sqlite3's executemany steps the statement once a row, which costs half again as
    much as the rows' own work. psycopg's executemany pipelines the rows already, and a statement
    that long would be parsed anew on every call (psycopg caches only short ones).
    """

    def __init__(
        self,
        table: sa.Table,
        computed: Mapping[str, sa.ColumnElement[Any]] | None = None,
        also: sa.CTE | None = None,
    ) -> None:
        computed = computed or {}
        values = {column.name: computed.get(column.name, sa.bindparam(column.name)) for column in table.c}
        statement = sa.insert(table).values(values)
        super().__init__(statement if also is None else statement.add_cte(also))
        self._table = table
        self._per_row = bool(computed) or also is not None
        self._batches: dict[str, tuple[str, int]] = {}

    @property
    def table(self) -> sa.Table:
        """The table rows are inserted into."""
        return self._table

    def execute_many(self, cursor: Any, dialect: Dialect, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` on the DBAPI `cursor`."""
        one = self.prepare(dialect)
        params = [self.bind(one, row) for row in rows]
        if one.positions is not None and not self._per_row:  # a computed value or a CTE is per row
            batch, size = self._batch(dialect)
            whole = len(params) - len(params) % size
            for start in range(0, whole, size):
                cursor.execute(batch, [value for row in params[start : start + size] for value in row])
            params = params[whole:]
        if params:
            cursor.executemany(one.sql, params)

    def _batch(self, dialect: Dialect) -> tuple[str, int]:
        """The SQL inserting `size` rows, their parameters row after row, and `size`."""
        batch = self._batches.get(dialect.name)
        if batch is None:
            columns = [column.name for column in self._table.c]
            if list(self.prepare(dialect).positions or ()) != columns:  # a row's values are bound in this order
                raise AssertionError(f"{dialect.name} orders the parameters of an INSERT otherwise")
            size = max(1, BATCH_PARAMETERS // len(columns))
            sql = multi_row_insert(self._table, columns, size).compile(dialect=dialect).string
            batch = self._batches[dialect.name] = (sql, size)
        return batch


def multi_row_insert(
    table: sa.Table, columns: Sequence[str], count: int, types: Mapping[str, sa.types.TypeEngine[Any]] | None = None
) -> sa.Insert:
    """One INSERT of `count` rows of `columns` into `table`, parameter `<column>_<row>` for each
    value (of `types[column]` where given), bound row after row: the values of the rows one after
    the other, each in the order of `columns`, on a driver that binds by position (SQLite).

    Raises:
        AssertionError: SQLAlchemy would order the parameters otherwise.
    """
    types = types or {}
    rows = [{name: sa.bindparam(f"{name}_{row}", type_=types.get(name)) for name in columns} for row in range(count)]
    statement = sa.insert(table).values(rows)
    expected = [f"{name}_{row}" for row in range(count) for name in columns]
    if list(statement.compile(dialect=_POSITIONAL).positiontup or ()) != expected:
        raise AssertionError("SQLAlchemy orders the parameters of a multi-row INSERT otherwise")
    return statement


_POSITIONAL = sqlite.dialect()  # the dialect threadstore binds by position for


BATCH_PARAMETERS = 999  # SQLite's smallest limit on the parameters of one statement (before 3.32)


def insert(
    table: sa.Table, computed: Mapping[str, sa.ColumnElement[Any]] | None = None, also: sa.CTE | None = None
) -> Insert:
    """INSERT of a whole row of `table`, every column a parameter named after it but those the
    database computes (`computed`: column name → SQL expression); `also`: a data-modifying CTE
    (PostgreSQL) the same statement runs, so that a second table's rows cost no round trip of their own."""
    return Insert(table, computed, also)


def one_of(column: sa.ColumnElement[Any], values: Sequence[str]) -> sa.ColumnElement[bool]:
    """`column IN ('a', 'b')` with the values written into the SQL: an expanding IN parameter
    would need compiling per call, and a bound status costs SQLite a new query plan on every call
    where it decides whether a partial index applies. Only for threadstore's own identifiers."""
    return column.in_([word(value) for value in sorted(values)])


def word(identifier: str) -> sa.ColumnElement[str]:
    """One of threadstore's own identifiers (a status) as an SQL string literal, never bound.

    Raises:
        ValueError: `identifier` is not made of letters, digits and underscores.
    """
    if not identifier.replace("_", "").isalnum():
        raise ValueError(f"not an identifier: {identifier!r}")
    return sa.literal_column(f"'{identifier}'", sa.String)


ONE: sa.ColumnElement[int] = sa.literal_column(
    "1", sa.Integer
)  # LIMIT 1, written: a generic plan on PostgreSQL then knows one row is wanted


def unplanned(name: str, type_: sa.types.TypeEngine[Any]) -> sa.ColumnElement[Any]:
    """The bound parameter `name`, which PostgreSQL's planner does not see: `(SELECT $1)`, a one-row
    subquery it leaves unevaluated, on PostgreSQL; the parameter itself elsewhere.

    PostgreSQL plans a prepared statement anew on every call (a custom plan) while that plan, made
    knowing the values, is estimated cheaper than the one made without them (the generic plan,
    which it would keep after five calls); and an unknown LIMIT or OFFSET makes the generic plan
    guess that a tenth of the rows are read, so that a statement paged by parameters is planned
    again on every call (about 130 µs). Where every value the estimate depends on is hidden this
    way, both plans cost the same and PostgreSQL keeps the generic one: only for a statement whose
    best plan is the same whatever the values."""
    return _Unplanned(sa.bindparam(name, type_=type_))


class _Unplanned(sa.ColumnElement[Any]):
    inherit_cache = True
    # SQLAlchemy's cache key of the element: its parameter (SQLAlchemy's own elements declare it so).
    _traverse_internals = [("bind", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, bind: sa.BindParameter[Any]) -> None:
        self.bind = bind
        self.type = bind.type


@compiles(_Unplanned)
def _unplanned(element: _Unplanned, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.bind, **kw)


@compiles(_Unplanned, "postgresql")
def _unplanned_postgresql(element: _Unplanned, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(SELECT {compiler.process(element.bind, **kw)})"


def exists(table: sa.Table) -> Statement:
    """Whether `table` has a row with the id in parameter `id`."""
    return Statement(sa.select(table.c.id).where(table.c.id == sa.bindparam("id")))
