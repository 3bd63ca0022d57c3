"""An AsyncStore that sync test code drives as if it were a Store, so that every behaviour test
runs against both stores.

Each call becomes a coroutine of the AsyncStore, awaited on an event loop in a thread of the
facade's own; the test waits for its result. What the tests read besides the repositories (the
engine, to look at rows; the URL and clock) comes from a plain engine on the same database.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from threadstore import AsyncStore, Store
from threadstore.async_repositories import AsyncLangGraph, AsyncRepository
from threadstore.db import create_engine

T = TypeVar("T")


class Loop:
    """An event loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop and return its result, raising what it raises."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=120)

    def result(self, awaited: Any) -> Any:
        """What a coroutine returns, or, for an async iterator, a sync iterator over its items."""
        if isinstance(awaited, AsyncIterator):
            return self._items(awaited)
        return self.wait(awaited)

    def _items(self, items: AsyncIterator[Any]) -> Iterator[Any]:
        async def next_item() -> Any:
            return await anext(items)

        while True:
            try:
                yield self.wait(next_item())
            except StopAsyncIteration:
                return

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


class BlockingRepository:
    """The methods of an async repository, each waited for."""

    def __init__(self, repository: AsyncRepository[Any] | AsyncLangGraph, loop: Loop) -> None:
        self._repository = repository
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._repository, name)
        if isinstance(found, AsyncRepository):
            return BlockingRepository(found, self._loop)
        method = cast(Callable[..., Any], found)
        return lambda *args, **kwargs: self._loop.result(method(*args, **kwargs))


class BlockingRepositories:
    """Every repository of an AsyncStore or AsyncTransaction, waited for."""

    def __init__(self, repositories: Any, loop: Loop) -> None:
        self.assistants = BlockingRepository(repositories.assistants, loop)
        self.threads = BlockingRepository(repositories.threads, loop)
        self.messages = BlockingRepository(repositories.messages, loop)
        self.runs = BlockingRepository(repositories.runs, loop)
        self.run_steps = BlockingRepository(repositories.run_steps, loop)
        self.langgraph = BlockingRepository(repositories.langgraph, loop)
        self.conversations = BlockingRepository(repositories.conversations, loop)
        self.responses = BlockingRepository(repositories.responses, loop)
        self.events = BlockingRepository(repositories.events, loop)


class BlockingStore(BlockingRepositories):
    """An AsyncStore with Store's face."""

    def __init__(self, store: AsyncStore, loop: Loop) -> None:
        super().__init__(store, loop)
        self.async_store = store
        self.url = store.url
        self.clock = store.clock
        self.engine = create_engine(store.url)  # for the tests' own looks at the rows
        self._loop = loop

    @contextmanager
    def transaction(self) -> Iterator[BlockingRepositories]:
        manager = self.async_store.transaction()
        tx = self._loop.wait(manager.__aenter__())
        try:
            yield BlockingRepositories(tx, self._loop)
        except BaseException as error:
            if not self._loop.wait(manager.__aexit__(type(error), error, error.__traceback__)):
                raise
        else:
            self._loop.wait(manager.__aexit__(None, None, None))

    def result(self, awaited: Any) -> Any:
        """What a coroutine of `async_store` returns (waited for here), raising what it raises."""
        return self._loop.result(awaited)

    def migrate(self) -> None:
        self._loop.wait(self.async_store.migrate())

    def close(self) -> None:
        self._loop.wait(self.async_store.close())
        self.engine.dispose()
        self._loop.stop()

    def __enter__(self) -> BlockingStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def blocking_async_store(*args: Any, **kwargs: Any) -> Store:
    """An AsyncStore opened with `Store`'s arguments, driven as a Store (see BlockingStore)."""
    loop = Loop()

    async def opened() -> AsyncStore:
        return AsyncStore(*args, **kwargs)

    return cast(Store, BlockingStore(loop.wait(opened()), loop))
