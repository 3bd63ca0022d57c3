"""threadstore: the storage layer of assistant and agent runtimes.

from threadstore import Store
store = Store("sqlite:///app.db")

Literal types of every enum-like argument and the content part TypedDicts: threadstore.types.
"""

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
