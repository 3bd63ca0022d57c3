"""The store's clock: an injectable source of aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""A function returning the current time as an aware datetime."""


def system_clock() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def unix_seconds(moment: datetime) -> int:
    """Return `moment` as whole Unix seconds, the unit of every OpenAI timestamp.

    Raises:
        ValueError: `moment` is naive, so its instant is unknown.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the store's clock must return timezone-aware datetimes")
    return int(moment.timestamp())
