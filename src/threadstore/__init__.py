"""threadstore: the storage layer of assistant and agent runtimes.

from threadstore import Store
store = Store("sqlite:///app.db")

Literal types of every enum-like argument and the content part TypedDicts: threadstore.types.

Importing the package loads none of its modules: each name below is imported on first use (PEP
562), so that a program that imports threadstore pays for what it uses (`from threadstore import
Store` loads the sync store and its tables; AsyncStore brings asyncio; the CLI's `--version` loads
neither).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from threadstore.async_store import AsyncStore, AsyncTransaction
    from threadstore.errors import (
        ConflictError,
        InvalidTransitionError,
        NotFoundError,
        ReadOnlyError,
        SchemaOutOfDateError,
        StorageError,
        ThreadStoreError,
        UsageError,
        ValidationError,
    )
    from threadstore.events.api import Event
    from threadstore.langgraph.api import LangGraphRun, LangGraphThread
    from threadstore.openai.api import Assistant, Deleted, LastError, Message, Run, RunStep, Thread, Usage
    from threadstore.pagination import Page
    from threadstore.responses.api import Conversation, Response
    from threadstore.responses.items import Item
    from threadstore.store import Store, Transaction
    from threadstore.types import MessageContentPart, Order, Role, RunStatus

_MODULE_OF = {
    "Assistant": "threadstore.openai.api",
    "AsyncStore": "threadstore.async_store",
    "AsyncTransaction": "threadstore.async_store",
    "ConflictError": "threadstore.errors",
    "Conversation": "threadstore.responses.api",
    "Deleted": "threadstore.openai.api",
    "Event": "threadstore.events.api",
    "InvalidTransitionError": "threadstore.errors",
    "Item": "threadstore.responses.items",
    "LangGraphRun": "threadstore.langgraph.api",
    "LangGraphThread": "threadstore.langgraph.api",
    "LastError": "threadstore.openai.api",
    "Message": "threadstore.openai.api",
    "MessageContentPart": "threadstore.types",
    "NotFoundError": "threadstore.errors",
    "Order": "threadstore.types",
    "Page": "threadstore.pagination",
    "ReadOnlyError": "threadstore.errors",
    "Response": "threadstore.responses.api",
    "Role": "threadstore.types",
    "Run": "threadstore.openai.api",
    "RunStatus": "threadstore.types",
    "RunStep": "threadstore.openai.api",
    "SchemaOutOfDateError": "threadstore.errors",
    "StorageError": "threadstore.errors",
    "Store": "threadstore.store",
    "Thread": "threadstore.openai.api",
    "ThreadStoreError": "threadstore.errors",
    "Transaction": "threadstore.store",
    "Usage": "threadstore.openai.api",
    "UsageError": "threadstore.errors",
    "ValidationError": "threadstore.errors",
}

__all__ = [
    "Assistant",
    "AsyncStore",
    "AsyncTransaction",
    "ConflictError",
    "Conversation",
    "Deleted",
    "Event",
    "InvalidTransitionError",
    "Item",
    "LangGraphRun",
    "LangGraphThread",
    "LastError",
    "Message",
    "MessageContentPart",
    "NotFoundError",
    "Order",
    "Page",
    "ReadOnlyError",
    "Response",
    "Role",
    "Run",
    "RunStatus",
    "RunStep",
    "SchemaOutOfDateError",
    "StorageError",
    "Store",
    "Thread",
    "ThreadStoreError",
    "Transaction",
    "Usage",
    "UsageError",
    "ValidationError",
]


def __getattr__(name: str) -> object:
    """The exported `name`, imported from its module on first use.

    Raises:
        AttributeError: threadstore exports no such name.
    """
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'threadstore' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups find it without this call
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
