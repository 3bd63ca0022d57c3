"""How responses stream: the Responses API's events, each with its `sequence_number` (0, 1, 2, …
per response), written by events.log through transitions.py (created, queued, in_progress and
the terminal statuses) and by the response verbs (output items and text deltas).

A response's events are keyed by the response itself: `thread_id` and `run_id` are both its id.
A response outlives its conversation (deleting a conversation keeps its responses), so its
stream goes with the response, and the event log's order (per thread id) is per response, which
is the order its sequence numbers give. `events.follow(run_id=resp_id)` replays a response's
stream and ends with its terminal event.

`responses.sequence_number` counts the events a response has streamed. A create streams two
(`response.created`, then `response.queued` or `response.in_progress`) and is written with
2; each status move streams one, which the move counts (its row's `sequence_number` is one past
the event's); the verbs that stream more count those in the same UPDATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threadstore.events.log import ApiObject, Row, append, register
from threadstore.fastsql import Raw
from threadstore.records import Json
from threadstore.responses.models import responses
from threadstore.responses.queries import load_response

CREATED_EVENTS = 2


def response_event(kind: str, sequence_number: int, response: Json) -> Json:
    """The data of `response.<kind>`: the response at that moment."""
    return {"type": f"response.{kind}", "sequence_number": sequence_number, "response": response}


def write(raw: Raw, response_id: str, name: str, sequence_number: int, now: int, **fields: Any) -> None:
    """Add the event `name` (`response.output_item.added`, `response.output_text.delta`, ...) with
    its fields to a response's stream, in the unit of `raw`; nothing at all (not even its data)
    when the store writes no events."""
    if raw.events:
        data = {"type": name, "sequence_number": sequence_number, **fields}
        append(raw, name, data, response_id, response_id, now)


@dataclass(frozen=True)
class ResponseStream:
    """The events transitions.py writes for a response's create and moves."""

    thread: str = "id"
    run: str | None = "id"
    unit: int = 1

    def on_create(self, raw: Raw, row: Row, built: ApiObject | None) -> list[tuple[str, Json]]:
        data = load_response(raw, row).to_api()
        return [
            ("response.created", response_event("created", 0, data)),
            (f"response.{row['status']}", response_event(row["status"], 1, data)),
        ]

    def on_move(self, raw: Raw, row: Row, built: ApiObject | None) -> list[tuple[str, Json]]:
        data = load_response(raw, row).to_api()
        return [(f"response.{row['status']}", response_event(row["status"], row["sequence_number"] - 1, data))]


register(responses, ResponseStream())
