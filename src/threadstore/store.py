"""The Store: an engine, its repositories, and `transaction()`, the one owner of commit and rollback."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from sqlalchemy.engine import URL, Engine

import threadstore.langgraph.streams
import threadstore.openai.streams
import threadstore.responses.streams  # noqa: F401
from threadstore import versions
from threadstore.clock import Clock, system_clock
from threadstore.db import (
    Synchronous,
    create_engine,
    in_schema,
    is_sqlite,
    normalize_url,
    unit_of_work,
    url_from_environment,
)
from threadstore.errors import ReadOnlyError, SchemaOutOfDateError
from threadstore.events.repository import Events
from threadstore.fastsql import Raw
from threadstore.langgraph.repositories import LangGraph
from threadstore.openai.assistants import Assistants
from threadstore.openai.messages import Messages
from threadstore.openai.run_steps import RunSteps
from threadstore.openai.runs import Runs
from threadstore.openai.threads import Threads
from threadstore.responses.conversations import Conversations
from threadstore.responses.responses import Responses
from threadstore.scope import EngineScope, RawUnit, Scope, TransactionScope, hold_open, let_go_open


class TransactionBlock:
    """The block of a transaction: enters its unit of work, and ends it.

    A class rather than generators under contextlib: an interrupt that landed in contextlib's code
    between two generators would leave the thread marked as holding the transaction, and its unit
    open, for as long as a saved traceback kept the suspended generators alive. Here the end first
    unmarks the thread, then ends the unit; an interrupt that cuts the end short from there leaves
    a unit that the thread's next call takes back (kept.KeptConnections.take).
    """

    __slots__ = ("_asynchronous", "_clock", "_held", "_scope", "_tx", "_unit")

    def __init__(self, scope: EngineScope, clock: Clock, *, asynchronous: bool) -> None:
        # An AsyncStore's transaction spans calls (its worker thread's) and is marked as held by
        # its task (AsyncStore.transaction); a sync one marks its thread here.
        self._scope = scope
        self._clock = clock
        self._asynchronous = asynchronous
        self._unit: RawUnit | None = None
        self._tx: Transaction | None = None
        self._held: tuple[Scope, object] | None = None

    def __enter__(self) -> Transaction:
        unit = self._unit = self._scope.write(spans_calls=self._asynchronous)  # checks the schema first
        raw = unit.__enter__()
        try:
            tx = self._tx = Transaction(raw, self._clock)
            if not self._asynchronous:
                self._held = hold_open(self._scope, sys._getframe(1))
            return tx
        except BaseException as error:
            self.__exit__(type(error), error, error.__traceback__)
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> None:
        if self._held is not None:
            let_go_open(self._held)
        if self._tx is not None:
            self._tx._scope.end()
        if self._unit is not None:
            self._unit.__exit__(kind, error, trace)


class Repositories:
    """The repositories of one scope: the store's own, or those of one transaction."""

    def __init__(self, scope: Scope) -> None:
        self.assistants = Assistants(scope)
        self.threads = Threads(scope)
        self.messages = Messages(scope)
        self.runs = Runs(scope)
        self.run_steps = RunSteps(scope)
        self.langgraph = LangGraph(scope)
        self.conversations = Conversations(scope)
        self.responses = Responses(scope)
        self.events = Events(scope)


class Transaction(Repositories):
    """One unit of work: every repository call inside it commits or rolls back together."""

    def __init__(self, raw: Raw, clock: Clock) -> None:
        self._scope = TransactionScope(raw, clock)
        super().__init__(self._scope)


class Store(Repositories):
    """threadstore's entry point.

    ``Store()`` opens ``$THREADSTORE_URL``, else ``./threadstore.db``; ``Store(url)`` opens any
    SQLite or PostgreSQL URL.
    A SQLite database is migrated to the newest schema on open; a PostgreSQL one must be
    migrated with `migrate()` or ``threadstore migrate --url ...``. Each repository call on the
    store is its own transaction; group calls with `transaction()`.
    """

    def __init__(
        self,
        url: str | URL | None = None,
        *,
        clock: Clock | None = None,
        synchronous: Synchronous = "NORMAL",
        migrate_on_open: bool | None = None,
        engine_options: Mapping[str, Any] | None = None,
        events: bool = True,
        schema: str | None = None,
        read_only: bool = False,
    ) -> None:
        """Open a store.

        Args:
            url: a database URL (``postgres://`` is read as ``postgresql://``); when None,
                ``$THREADSTORE_URL``, else ``sqlite:///threadstore.db``.
            clock: returns the current time as an aware datetime; the system's UTC clock by default.
            synchronous: SQLite durability, NORMAL or FULL (see db.create_engine).
            migrate_on_open: upgrade the schema now; by default True for SQLite, False otherwise.
            engine_options: passed on to sqlalchemy.create_engine (pool settings and the like).
            events: write the event of every change (`store.events`); False writes none.
            schema: PostgreSQL only: the schema that holds threadstore's tables and version table
                (the connections' search_path; `migrate()` creates it).
            read_only: open the database for reading only (a backup, a replica, a read-only
                mount): every write raises ReadOnlyError and writes nothing; it is never
                migrated, and its schema must be current.

        Raises:
            ValidationError: the URL is not a supported database URL, or `schema` is not a schema name.
            StorageError: a PostgreSQL URL without the postgres extra installed.
            SchemaOutOfDateError: migrating on open found a schema from a newer threadstore.
        """
        parsed = in_schema(normalize_url(url_from_environment(url)), schema)
        engine = create_engine(parsed, synchronous=synchronous, engine_options=engine_options, read_only=read_only)
        self._open(parsed, engine, clock, events=events, schema=schema, read_only=read_only)
        if not read_only and (migrate_on_open if migrate_on_open is not None else is_sqlite(self.engine)):
            self._migrate_if_behind()

    @classmethod
    def _on_engine(
        cls,
        url: URL,
        engine: Engine,
        clock: Clock | None,
        *,
        events: bool = True,
        schema: str | None = None,
        read_only: bool = False,
    ) -> Store:
        """A store on an engine made elsewhere (AsyncStore's, whose connections are async), not migrated."""
        store = cls.__new__(cls)
        store._open(url, engine, clock, events=events, schema=schema, read_only=read_only)
        return store

    def _open(
        self, url: URL, engine: Engine, clock: Clock | None, *, events: bool, schema: str | None, read_only: bool
    ) -> None:
        self.url = url
        self.schema = schema
        self.engine = engine
        self.clock = clock or system_clock
        self.read_only = read_only
        self._schema_current = False
        self._engine_scope = EngineScope(
            self.engine, self.clock, self._require_current_schema, events=events, read_only=read_only
        )
        super().__init__(self._engine_scope)

    def migrate(self) -> None:
        """Upgrade the database schema to the newest revision (a no-op when it is current).

        Raises:
            SchemaOutOfDateError: the database was migrated by a newer threadstore.
            StorageError: a migration failed; the schema is as it was.
            ReadOnlyError: the store was opened with ``read_only=True``.
        """
        if self.read_only:
            raise ReadOnlyError("This store was opened with read_only=True: it cannot be migrated.")
        from threadstore import migrate  # Alembic, only when a migration is asked for

        migrate.upgrade(self.engine, schema=self.schema)
        self._schema_current = True

    def _migrate_if_behind(self) -> None:
        """Migrate unless one plain query finds the schema current (opening skips Alembic then)."""
        with unit_of_work(self.engine, write=False) as connection:
            found = versions.recorded(connection)
        if found == versions.HEAD:
            self._schema_current = True
        else:
            self.migrate()

    def _require_current_schema(self) -> None:
        if self._schema_current:
            return
        with unit_of_work(self.engine, write=False) as connection:
            found = versions.recorded(connection)
            shared = versions.revisions_in(connection, versions.SHARED_VERSION_TABLE) if found is None else []
        if found != versions.HEAD:
            from threadstore import migrate

            if not migrate.is_known(found):
                assert found is not None
                raise migrate.newer_schema_error(found)
            older = [revision for revision in shared if migrate.is_known(revision)]
            where = (
                f"{older[0]} in {versions.SHARED_VERSION_TABLE}, where threadstore kept it before it had "
                f"{versions.VERSION_TABLE}"
                if older
                else found or "none (never migrated)"
            )
            raise SchemaOutOfDateError(
                f"The database schema is at revision {where}, but threadstore needs {versions.HEAD}. "
                f"Run: {migrate.fix_command(self.url, self.schema)}"
            )
        self._schema_current = True

    def transaction(self) -> AbstractContextManager[Transaction]:
        """One unit of work: commits when the block ends, rolls back if it raises. Inside the
        block, use the transaction's repositories (``tx.threads``): a call on the store itself
        from the same thread would wait for this transaction, and is refused.

        Raises:
            UsageError: this thread already holds a transaction of this store open; or, later,
                the transaction is used after its block.
            ReadOnlyError: the store was opened with ``read_only=True``.
            SchemaOutOfDateError: the database schema is behind.
            ConflictError, StorageError: the database refused the work.
        """
        # Its unit does not span calls: this thread's calls on the store are refused while it is
        # open, so a later call of this thread finds it over, and takes back its connection if an
        # interrupt kept it from ending (see kept.KeptConnections.take).
        return TransactionBlock(self._engine_scope, self.clock, asynchronous=False)

    def _transaction(self) -> TransactionBlock:
        """The unit of work of an AsyncStore transaction: not marked as held by this thread
        (AsyncStore marks its task instead), entered and ended in a worker thread, where it
        `spans_calls`."""
        return TransactionBlock(self._engine_scope, self.clock, asynchronous=True)

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine_scope.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()
