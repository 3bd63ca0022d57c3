"""The error tree: every error threadstore raises derives from ThreadStoreError."""

from __future__ import annotations


class ThreadStoreError(Exception):
    """Root of every error raised by threadstore."""


class NotFoundError(ThreadStoreError, LookupError):
    """The object asked for does not exist (or is not where it was looked for)."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"No {kind} found with id {object_id!r}.")
        self.kind = kind
        self.object_id = object_id


class ValidationError(ThreadStoreError, ValueError):
    """Input was refused before anything was written: bad metadata, content, enum, limit, cursor."""


class ConflictError(ThreadStoreError):
    """A lost race, a busy thread, or a duplicate id: the write was refused and nothing changed."""


class InvalidTransitionError(ConflictError):
    """A lifecycle move the object's state machine does not allow from its current status.

    It is a ConflictError: when two writers race, the loser finds the object already moved on,
    which is exactly an illegal move from the status it finds. Catch ConflictError for "the
    stored state refused my write", InvalidTransitionError for the status-specific detail.
    """

    def __init__(self, kind: str, object_id: str, status: str, target: str) -> None:
        super().__init__(f"Cannot move {kind} {object_id} from status {status!r} to {target!r}.")
        self.kind = kind
        self.object_id = object_id
        self.status = status
        self.target = target


class SchemaOutOfDateError(ThreadStoreError):
    """The database schema is behind this version of threadstore; the message says how to fix it."""


class StorageError(ThreadStoreError):
    """Any other failure reported by the database driver."""
