"""Prefixed, time-ordered identifiers (`msg_…`, `run_…`) that sort in creation order.

An id is 48 bits of Unix milliseconds followed by 80 random bits, written (from the top bit down)
in lowercase Crockford base32 (26 characters), whose alphabet is in ASCII order so that string
order is numeric order.
Within one process the value only ever grows: the first id of a millisecond takes fresh random
bits, and the ids after it in the same millisecond count on from it (as ULID's monotonic ids do),
so they sort in creation order and cost no call to the system's random source. Different
processes start from different random points.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_RANDOM_BITS = 80

_lock = threading.Lock()
_last = 0


def _reset_after_fork() -> None:
    # A child must not continue its parent's sequence, or both could issue the same next id.
    global _last
    _last = 0


os.register_at_fork(after_in_child=_reset_after_fork)


def _next_value() -> int:
    global _last
    millisecond = (time.time_ns() // 1_000_000) << _RANDOM_BITS
    with _lock:
        if millisecond > _last:  # the first id of this millisecond starts at a random point in it
            _last = millisecond | secrets.randbits(_RANDOM_BITS)
        else:  # later ids of the same millisecond (or of a clock that stepped back) follow on
            _last += 1
        return _last


# Ten bits at a time: every pair of characters, in order, so an id is 13 lookups.
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]


def _encode(value: int) -> str:
    bits = value << 2  # 130 bits: 26 characters of 5 bits, the top one first
    return "".join([_PAIRS[(bits >> shift) & 1023] for shift in range(120, -1, -10)])


def new_id(prefix: str) -> str:
    """Return a new id such as ``msg_01jd…``: `prefix`, an underscore and 26 sortable characters."""
    return f"{prefix}_{_encode(_next_value())}"


def new_uuid() -> str:
    """Return a new UUID (version 7: Unix milliseconds, then random bits), as LangGraph ids are
    UUIDs; version 7 keeps them in creation order."""
    millis = time.time_ns() // 1_000_000
    value = millis << 80 | 0x7 << 76 | secrets.randbits(12) << 64 | 0b10 << 62 | secrets.randbits(62)
    return str(uuid.UUID(int=value))
