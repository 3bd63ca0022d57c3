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


class InvalidTransitionError(ThreadStoreError):
    """A lifecycle move the object's state machine does not allow from its current status."""

    def __init__(self, kind: str, object_id: str, status: str, target: str) -> None:
        super().__init__(f"Cannot move {kind} {object_id} from status {status!r} to {target!r}.")
        self.kind = kind
        self.object_id = object_id
        self.status = status
        self.target = target


class ConflictError(ThreadStoreError):
    """A lost race, a busy thread, or a duplicate id: the write was refused and nothing changed."""


class SchemaOutOfDateError(ThreadStoreError):
    """The database schema is behind this version of threadstore; the message says how to fix it."""


class StorageError(ThreadStoreError):
    """Any other failure reported by the database driver."""
