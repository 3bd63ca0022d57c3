"""An event's id as a cursor: the position in the stream it stands for."""

from __future__ import annotations

from threadstore.errors import ValidationError, shown
from threadstore.validation import MAX_INT64


def cursor(after: object) -> int | None:
    """The position an `after` cursor (an event's id) stands for.

    Raises:
        ValidationError: `after` is not an event id.
    """
    if after is None:
        return None
    if not isinstance(after, str) or not after.isascii() or not after.isdigit() or len(after) > 19:
        raise ValidationError(f"after must be an event id (a string of digits), not {shown(after)}.")
    position = int(after)
    if position > MAX_INT64:
        raise ValidationError(f"after must be an event id, not {shown(after)}.")
    return position
