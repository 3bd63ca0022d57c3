"""Following a thread's or a run's events: what to hand on from each batch read, where to read
from next, and when the follow is over. The sync store's iterator and the async store's async
iterator both drive this one `Follower`; they differ only in how they wait."""

from __future__ import annotations

import time
from collections.abc import Sequence

from threadstore.errors import ValidationError, shown
from threadstore.events.api import Event
from threadstore.events.cursors import cursor
from threadstore.openai.states import RUN
from threadstore.responses.states import RESPONSE
from threadstore.validation import check_optional_string

# The last event of a run: an OpenAI run's move to a terminal status (written after its steps and
# messages end), a LangGraph run's `end`, a response's move to a terminal status.
RUN_ENDS = frozenset(
    {
        *(f"thread.run.{status}" for status in RUN.terminal),
        "end",
        *(f"response.{status}" for status in RESPONSE.terminal),
    }
)
DEFAULT_INTERVAL = 0.05  # seconds between two reads when nothing new was found


class Follower:
    """The state of one follow: its filter (a thread, a run, or neither: every thread), its
    cursor, and whether it is over."""

    def __init__(self, thread_id: object, run_id: object, after: object, timeout: object, interval: object) -> None:
        """Check the follow's arguments.

        Raises:
            ValidationError: an argument is malformed.
        """
        self.thread_id = check_optional_string("thread_id", thread_id)
        self.run_id = check_optional_string("run_id", run_id)
        cursor(after)
        self.after = after if isinstance(after, str) else None
        self.timeout = _seconds("timeout", timeout)
        self.interval = _seconds("interval", interval) or DEFAULT_INTERVAL
        self.over = False
        self._quiet_since = time.monotonic()

    def take(self, batch: Sequence[Event]) -> list[Event]:
        """The events of `batch` to hand on; moves the cursor past them and ends the follow of a
        run at its last event."""
        taken = []
        for event in batch:
            taken.append(event)
            self.after = event.id
            if self.run_id is not None and event.run_id == self.run_id and event.event in RUN_ENDS:
                self.over = True
                break
        if batch:
            self._quiet_since = time.monotonic()
        elif self.timeout is not None and time.monotonic() - self._quiet_since >= self.timeout:
            self.over = True
        return taken


def _seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValidationError(f"{name} must be a number of seconds, not {shown(value)}.")
    return float(value)
