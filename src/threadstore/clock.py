"""The store's clock: an injectable source of aware UTC datetimes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from threadstore.errors import ValidationError

Clock = Callable[[], datetime]
"""A function returning the current time as an aware datetime."""


def system_clock() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


def unix_seconds(moment: datetime) -> int:
    """Return `moment` as whole Unix seconds, the unit of every OpenAI timestamp.

    Raises:
        ValidationError: `moment` is naive, so its instant is unknown.
    """
    return int(_aware(moment).timestamp())


def unix_micros(moment: datetime) -> int:
    """Return `moment` as whole Unix microseconds, how LangGraph times are stored.

    Raises:
        ValidationError: `moment` is naive.
    """
    delta = _aware(moment) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _aware(moment: object) -> datetime:
    """`moment`, if it is an aware datetime.

    Raises:
        ValidationError: it is naive (its instant is unknown) or not a datetime.
    """
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(
            f"The store's clock must return timezone-aware datetimes (e.g. datetime.now(UTC)), got {moment!r}."
        )
    return moment


def iso_from_micros(micros: int) -> str:
    """Unix microseconds as ISO 8601 in UTC with its offset, e.g. ``2026-01-01T00:00:00+00:00``."""
    return (_EPOCH + timedelta(microseconds=micros)).isoformat()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
