"""Leased claims, as OpenAI and LangGraph runs both take them: a claim raises the run's attempt
number and may hold it under a lease; a worker proves it still owns the run by its attempt, and a
run whose lease expired may be claimed again. The rules the two families share live here."""

from __future__ import annotations

from threadstore.errors import ConflictError
from threadstore.validation import check_int

DEFAULT_LEASE_SECONDS = 300
DEFAULT_MAX_ATTEMPTS = 3
MAX_LEASE_SECONDS = 7 * 86_400


def lease_micros(seconds: object) -> int:
    """A lease of `seconds` (1 second to 7 days) in microseconds.

    Raises:
        ValidationError: not an integer in that range.
    """
    return check_int("lease_seconds", seconds, minimum=1, maximum=MAX_LEASE_SECONDS) * 1_000_000


def check_max_attempts(value: object) -> int:
    """How many claims a run may use, at least 1.

    Raises:
        ValidationError: not an integer of at least 1.
    """
    return check_int("max_attempts", value, minimum=1)


def stale(run_id: str, attempt: int, current: int) -> ConflictError:
    """The refusal of a worker whose claim (`attempt`) is no longer the run's `current` one."""
    return ConflictError(
        f"Attempt {attempt} of run {run_id} is stale (it is on attempt {current}); nothing was changed."
    )
