"""threadstore: the storage layer of assistant and agent runtimes.

from threadstore import Store
store = Store("sqlite:///app.db")
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
from threadstore.openai.api import Assistant, Deleted, LastError, Message, Run, RunStep, Thread, Usage
from threadstore.pagination import Page
from threadstore.store import Store, Transaction

__all__ = [
    "Assistant",
    "AsyncStore",
    "AsyncTransaction",
    "ConflictError",
    "Deleted",
    "InvalidTransitionError",
    "LastError",
    "Message",
    "NotFoundError",
    "Page",
    "ReadOnlyError",
    "Run",
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
