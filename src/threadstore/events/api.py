"""The event object the stream returns, and its Server-Sent Events frame."""

from __future__ import annotations

from dataclasses import dataclass

from threadstore.fastsql import dumps
from threadstore.records import Json, Row, row_reader


@dataclass(frozen=True, slots=True)
class Event:
    """One event of the stream. `id` is its cursor: events of a thread or run are followed in
    the order of their ids, as strings of increasing numbers."""

    id: str
    event: str
    data: Json
    thread_id: str
    run_id: str | None
    created_at: int

    @classmethod
    def from_row(cls, m: Row) -> Event:
        """Build from a row of the events table."""
        return cls(*_EVENT_ARGS(m))

    def to_api(self) -> Json:
        """The event as JSON: its id, name, data, thread, run and time."""
        return {
            "id": self.id,
            "event": self.event,
            "data": self.data,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "created_at": self.created_at,
        }

    def to_sse(self) -> str:
        """The Server-Sent Events frame: `id:`, `event:` and `data:` lines and a blank line, so a
        client that reconnects names this id as its `Last-Event-ID`."""
        return f"id: {self.id}\nevent: {self.event}\ndata: {dumps(self.data)}\n\n"


_EVENT_ARGS = row_reader(Event, {"id": lambda m: str(m["id"])})
