"""The repositories of AsyncStore: each method the awaitable twin of the store's own.

No body is written here. `awaitable(Messages.create)` is a coroutine method with the sync
method's parameters (checked by mypy through the ParamSpec), its return type and its errors; it
runs the sync method of the scope's repository through the store's runner (see runners.py).
`tests/test_async_store.py` checks that every public method of each sync repository has its twin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from threadstore.events.api import Event
from threadstore.events.follow import Follower
from threadstore.events.repository import MAX_LIMIT, Events
from threadstore.langgraph.repositories import LangGraph
from threadstore.langgraph.runs import LangGraphRuns
from threadstore.langgraph.threads import LangGraphThreads
from threadstore.openai.assistants import Assistants
from threadstore.openai.messages import Messages
from threadstore.openai.run_steps import RunSteps
from threadstore.openai.runs import Runs
from threadstore.openai.threads import Threads
from threadstore.responses.conversations import ConversationItems, Conversations
from threadstore.responses.responses import InputItems, Responses
from threadstore.runners import Runner

P = ParamSpec("P")
T = TypeVar("T")
R = TypeVar("R")


def awaitable(method: Callable[Concatenate[R, P], T]) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """The coroutine twin of a sync repository's `method`, for the body of an async repository."""

    async def call(self: AsyncRepository[R], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(method, self._sync, *args, **kwargs)

    call.__name__ = call.__qualname__ = method.__name__
    call.__doc__ = f"Awaitable `{method.__qualname__}`.\n\n{method.__doc__ or ''}"
    # inspect.signature (help(), a caller's introspection) follows this to the sync parameters.
    call.__wrapped__ = method  # type: ignore[attr-defined]
    return call


class AsyncRepository(Generic[R]):
    """A sync repository of one scope, and the runner its calls go through."""

    def __init__(self, sync: R, run: Runner) -> None:
        self._sync = sync
        self._run = run


class AsyncAssistants(AsyncRepository[Assistants]):
    """`store.assistants`, awaitable."""

    create = awaitable(Assistants.create)
    get = awaitable(Assistants.get)
    list = awaitable(Assistants.list)
    update = awaitable(Assistants.update)
    delete = awaitable(Assistants.delete)


class AsyncThreads(AsyncRepository[Threads]):
    """`store.threads`, awaitable."""

    create = awaitable(Threads.create)
    create_and_run = awaitable(Threads.create_and_run)
    get = awaitable(Threads.get)
    list = awaitable(Threads.list)
    update = awaitable(Threads.update)
    delete = awaitable(Threads.delete)


class AsyncMessages(AsyncRepository[Messages]):
    """`store.messages`, awaitable."""

    create = awaitable(Messages.create)
    create_many = awaitable(Messages.create_many)
    get = awaitable(Messages.get)
    list = awaitable(Messages.list)
    update = awaitable(Messages.update)
    update_content = awaitable(Messages.update_content)
    append_text = awaitable(Messages.append_text)
    complete = awaitable(Messages.complete)
    mark_incomplete = awaitable(Messages.mark_incomplete)
    delete = awaitable(Messages.delete)


class AsyncRuns(AsyncRepository[Runs]):
    """`store.runs`, awaitable."""

    create = awaitable(Runs.create)
    get = awaitable(Runs.get)
    list = awaitable(Runs.list)
    update = awaitable(Runs.update)
    delete = awaitable(Runs.delete)
    start = awaitable(Runs.start)
    claim_next = awaitable(Runs.claim_next)
    heartbeat = awaitable(Runs.heartbeat)
    requeue_stale = awaitable(Runs.requeue_stale)
    require_action = awaitable(Runs.require_action)
    submit_tool_outputs = awaitable(Runs.submit_tool_outputs)
    cancel = awaitable(Runs.cancel)
    mark_cancelled = awaitable(Runs.mark_cancelled)
    complete = awaitable(Runs.complete)
    fail = awaitable(Runs.fail)
    mark_incomplete = awaitable(Runs.mark_incomplete)
    expire = awaitable(Runs.expire)
    expire_overdue = awaitable(Runs.expire_overdue)


class AsyncRunSteps(AsyncRepository[RunSteps]):
    """`store.run_steps`, awaitable."""

    create = awaitable(RunSteps.create)
    get = awaitable(RunSteps.get)
    list = awaitable(RunSteps.list)
    update = awaitable(RunSteps.update)
    update_details = awaitable(RunSteps.update_details)
    complete = awaitable(RunSteps.complete)
    fail = awaitable(RunSteps.fail)
    cancel = awaitable(RunSteps.cancel)
    expire = awaitable(RunSteps.expire)
    delete = awaitable(RunSteps.delete)


class AsyncLangGraphThreads(AsyncRepository[LangGraphThreads]):
    """`store.langgraph.threads`, awaitable."""

    create = awaitable(LangGraphThreads.create)
    get = awaitable(LangGraphThreads.get)
    list = awaitable(LangGraphThreads.list)
    search = awaitable(LangGraphThreads.search)
    update = awaitable(LangGraphThreads.update)
    delete = awaitable(LangGraphThreads.delete)


class AsyncLangGraphRuns(AsyncRepository[LangGraphRuns]):
    """`store.langgraph.runs`, awaitable."""

    create = awaitable(LangGraphRuns.create)
    get = awaitable(LangGraphRuns.get)
    list = awaitable(LangGraphRuns.list)
    update = awaitable(LangGraphRuns.update)
    delete = awaitable(LangGraphRuns.delete)
    claim_next = awaitable(LangGraphRuns.claim_next)
    heartbeat = awaitable(LangGraphRuns.heartbeat)
    append_event = awaitable(LangGraphRuns.append_event)
    finish = awaitable(LangGraphRuns.finish)
    cancel = awaitable(LangGraphRuns.cancel)
    requeue_stale = awaitable(LangGraphRuns.requeue_stale)


class AsyncConversationItems(AsyncRepository[ConversationItems]):
    """`store.conversations.items`, awaitable."""

    create = awaitable(ConversationItems.create)
    list = awaitable(ConversationItems.list)
    get = awaitable(ConversationItems.get)
    delete = awaitable(ConversationItems.delete)


class AsyncConversations(AsyncRepository[Conversations]):
    """`store.conversations`, awaitable; `items` holds their items."""

    def __init__(self, sync: Conversations, run: Runner) -> None:
        super().__init__(sync, run)
        self.items = AsyncConversationItems(sync.items, run)

    create = awaitable(Conversations.create)
    get = awaitable(Conversations.get)
    update = awaitable(Conversations.update)
    delete = awaitable(Conversations.delete)


class AsyncInputItems(AsyncRepository[InputItems]):
    """`store.responses.input_items`, awaitable."""

    list = awaitable(InputItems.list)


class AsyncResponses(AsyncRepository[Responses]):
    """`store.responses`, awaitable; `input_items` holds their input items."""

    def __init__(self, sync: Responses, run: Runner) -> None:
        super().__init__(sync, run)
        self.input_items = AsyncInputItems(sync.input_items, run)

    create = awaitable(Responses.create)
    get = awaitable(Responses.get)
    delete = awaitable(Responses.delete)
    context = awaitable(Responses.context)
    claim_next = awaitable(Responses.claim_next)
    start = awaitable(Responses.start)
    add_output_item = awaitable(Responses.add_output_item)
    append_text = awaitable(Responses.append_text)
    complete = awaitable(Responses.complete)
    fail = awaitable(Responses.fail)
    mark_incomplete = awaitable(Responses.mark_incomplete)
    cancel = awaitable(Responses.cancel)


class AsyncEvents(AsyncRepository[Events]):
    """`store.events`, awaitable."""

    list = awaitable(Events.list)
    prune = awaitable(Events.prune)

    async def follow(
        self,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        after: str | None = None,
        timeout: float | None = None,
        interval: float | None = None,
    ) -> AsyncIterator[Event]:
        """`Events.follow` as an async iterator: ``async for event in store.events.follow(...)``.

        Waiting between reads awaits, so the loop runs other tasks meanwhile.

        Raises:
            ValidationError: a bad argument.
        """
        follower = Follower(thread_id, run_id, after, timeout, interval)
        wakeups = self._sync.wakeups
        while not follower.over:
            generation = wakeups.generation()  # before the read: a commit after it wakes us
            batch = await self._run(self._sync._batch, follower)
            for event in follower.take(batch):
                yield event
            if not follower.over and len(batch) < MAX_LIMIT:
                await wakeups.wait_async(generation, follower.interval)


class AsyncLangGraph:
    """`store.langgraph`, awaitable."""

    def __init__(self, sync: LangGraph, run: Runner) -> None:
        self.threads = AsyncLangGraphThreads(sync.threads, run)
        self.runs = AsyncLangGraphRuns(sync.runs, run)
