"""AsyncStore: the Store's repositories as coroutines, running the Store's own code.

Every call runs the sync repository method, unchanged, through a runner (runners.py): in a
greenlet over psycopg's async connections on PostgreSQL, in the store's worker thread on SQLite
(a transaction's calls in a worker of their own). Nothing of a repository is written twice; see README.md, "AsyncStore".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sqlalchemy.engine import URL

from threadstore.async_repositories import (
    AsyncAssistants,
    AsyncConversations,
    AsyncEvents,
    AsyncLangGraph,
    AsyncMessages,
    AsyncResponses,
    AsyncRuns,
    AsyncRunSteps,
    AsyncThreads,
)
from threadstore.clock import Clock
from threadstore.db import (
    Synchronous,
    create_async_postgres_engine,
    create_engine,
    in_schema,
    normalize_url,
    read_only_url,
    url_from_environment,
)
from threadstore.runners import GreenletRunner, Runner, ThreadRunner
from threadstore.scope import Scope, held_open, refuse_inside_transaction
from threadstore.store import Repositories, Store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

P = ParamSpec("P")
T = TypeVar("T")


class AsyncRepositories:
    """The awaitable repositories over the sync repositories of one scope."""

    def __init__(self, sync: Repositories, run: Runner) -> None:
        self.assistants = AsyncAssistants(sync.assistants, run)
        self.threads = AsyncThreads(sync.threads, run)
        self.messages = AsyncMessages(sync.messages, run)
        self.runs = AsyncRuns(sync.runs, run)
        self.run_steps = AsyncRunSteps(sync.run_steps, run)
        self.langgraph = AsyncLangGraph(sync.langgraph, run)
        self.conversations = AsyncConversations(sync.conversations, run)
        self.responses = AsyncResponses(sync.responses, run)
        self.events = AsyncEvents(sync.events, run)


class AsyncTransaction(AsyncRepositories):
    """One unit of work: every awaited call inside it commits or rolls back together."""


class AsyncStore(AsyncRepositories):
    """threadstore's entry point for async servers: `Store`'s repositories and verbs, awaited.

    ``async with AsyncStore(url) as store:``. Same arguments, objects and typed errors as
    `Store`; each call is its own transaction; group calls with `transaction()`.
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
        """Open a store. Nothing is awaited: a migration on open (SQLite's default, or asked for
        with `migrate_on_open=True`) runs before this returns, as it does for `Store`.

        Args:
            url: a database URL; when None, ``$THREADSTORE_URL``, else ``sqlite:///threadstore.db``.
            clock: returns the current time as an aware datetime; the system's UTC clock by default.
            synchronous: SQLite durability, NORMAL or FULL.
            migrate_on_open: upgrade the schema now; by default True for SQLite, False otherwise.
            engine_options: passed on to SQLAlchemy's engine (pool settings and the like).
            events: write the event of every change (`store.events`); False writes none.
            schema: PostgreSQL only: the schema of threadstore's tables (see `Store`).
            read_only: open the database for reading only; every write raises ReadOnlyError
                (see `Store`).

        Raises:
            ValidationError: the URL is not a supported database URL, or `schema` is not a schema name.
            StorageError: a PostgreSQL URL without the postgres extra installed.
        """
        parsed = in_schema(normalize_url(url_from_environment(url)), schema)
        self.url = parsed
        self._async_engine: AsyncEngine | None = None
        self._run: Runner
        if parsed.get_backend_name() == "postgresql":
            if migrate_on_open and not read_only:
                _migrate_now(parsed, schema)
            engine_url = read_only_url(parsed) if read_only else parsed
            self._async_engine = create_async_postgres_engine(engine_url, engine_options=engine_options)
            self._store = Store._on_engine(
                parsed, self._async_engine.sync_engine, clock, events=events, schema=schema, read_only=read_only
            )
            self._run = GreenletRunner()
        else:
            self._store = Store(
                parsed,
                clock=clock,
                synchronous=synchronous,
                migrate_on_open=migrate_on_open,
                engine_options=engine_options,
                events=events,
                read_only=read_only,
            )
            self._run = ThreadRunner()
        self.clock = self._store.clock
        super().__init__(self._store, _OutsideTransactions(self._run, self._store._engine_scope))

    async def migrate(self) -> None:
        """Upgrade the database schema to the newest revision (a no-op when it is current).

        Raises:
            StorageError: the migration failed; the schema is as it was.
        """
        await self._run(self._store.migrate)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncTransaction]:
        """One unit of work: commits when the block ends, rolls back if it raises or is cancelled.

        Raises:
            SchemaOutOfDateError: the database schema is behind.
            ConflictError, StorageError: the database refused the work.
        """
        scope = self._store._engine_scope
        refuse_inside_transaction(scope)
        unit = self._store._transaction()
        with self._run.apart() as run:
            try:
                tx = await run(unit.__enter__)
            except asyncio.CancelledError as error:
                # Cancelled while the unit began: it may have begun (SQLite: in its worker, with the
                # write lock taken) after all. Its end, queued behind its beginning, lets it go.
                await asyncio.shield(run(unit.__exit__, type(error), error, error.__traceback__))
                raise
            try:
                with held_open(scope):
                    yield AsyncTransaction(tx, run)
            except BaseException as error:
                # Shielded: a second cancellation must not keep the unit from ending.
                await asyncio.shield(run(unit.__exit__, type(error), error, error.__traceback__))
                raise
            else:
                await asyncio.shield(run(unit.__exit__, None, None, None))

    async def close(self) -> None:
        """Close every pooled connection, after the calls under way."""
        if self._async_engine is not None:
            await self._run(self._store._engine_scope.close)
            await self._async_engine.dispose()
        else:
            await self._run(self._store.close)
        self._run.close()

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc_info: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.close()


class _OutsideTransactions:
    """The runner of the store's own repositories: it refuses a call from a task that holds this
    store's transaction open (the call would wait for it), before handing the call on."""

    def __init__(self, run: Runner, scope: Scope) -> None:
        self._run = run
        self._scope = scope

    def __call__(self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """Hand the call on (a plain function: one coroutine frame fewer on every call).

        Raises:
            UsageError: this task holds the store's transaction open.
        """
        refuse_inside_transaction(self._scope)
        return self._run(function, *args, **kwargs)

    def apart(self) -> AbstractContextManager[Runner]:
        return self._run.apart()

    def close(self) -> None:
        self._run.close()


def _migrate_now(url: URL, schema: str | None) -> None:
    """Upgrade the schema over a sync connection of its own, before the async engine exists."""
    from threadstore import migrate  # Alembic, only when a migration is asked for

    engine = create_engine(url)
    try:
        migrate.upgrade(engine, schema=schema)
    finally:
        engine.dispose()
