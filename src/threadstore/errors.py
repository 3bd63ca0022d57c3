"""The error tree: every error threadstore raises derives from ThreadStoreError."""

from __future__ import annotations

import reprlib
from collections.abc import Iterable


def shown(value: object) -> str:
    """`value` as an error message shows it: short, and never failing (a 5,000-digit integer
    cannot be printed, a structure 2,000 levels deep cannot be repr'd)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        return _REPR.repr(value)
    except Exception:
        return f"a {type(value).__name__}"


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 200  # an id or a status in full; a pasted document cut short


class ThreadStoreError(Exception):
    """Root of every error raised by threadstore."""


class NotFoundError(ThreadStoreError, LookupError):
    """The object asked for does not exist (or is not where it was looked for)."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"No {kind} found with id {shown(object_id)}.")
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
    stored state refused my write", InvalidTransitionError for the status-specific detail. Its
    message names the verb and the statuses it needs ("submit_tool_outputs needs run run_… in
    requires_action; it is queued").

    Attributes:
        kind, object_id: the object ("run", its id).
        status: the status it is in.
        target: the status the verb moves to.
        verb: the verb that was refused ("submit_tool_outputs"), if known.
        sources: the statuses the verb moves from.
    """

    def __init__(
        self,
        kind: str,
        object_id: str,
        status: str,
        target: str,
        *,
        verb: str | None = None,
        sources: Iterable[str] = (),
    ) -> None:
        self.kind = kind
        self.object_id = object_id
        self.status = status
        self.target = target
        self.verb = verb
        self.sources = tuple(sorted(sources))
        if verb is not None and self.sources:
            needs = " or ".join(self.sources)
            message = f"{verb} needs {kind} {object_id} in {needs}; it is {status}."
        else:
            message = f"Cannot move {kind} {object_id} from status {status!r} to {target!r}."
        super().__init__(message)


class UsageError(ThreadStoreError):
    """The API was used in a way that cannot work, refused before anything was sent: a call on a
    store (or a nested `transaction()`) while the same thread or task holds that store's
    transaction open, which would wait for itself; a transaction used after its block."""


class SchemaOutOfDateError(ThreadStoreError):
    """The database schema is behind this version of threadstore; the message says how to fix it."""


class StorageError(ThreadStoreError):
    """Any other failure reported by the database driver."""


class ReadOnlyError(StorageError):
    """A write on a store opened with ``read_only=True`` (or on a database that is read-only): it
    was refused and nothing was written."""
