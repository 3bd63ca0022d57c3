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

from threadstore.events.log import Row, register
from threadstore.fastsql import Raw
from threadstore.records import Json
from threadstore.responses.models import responses
from threadstore.responses.queries import load_response

CREATED_EVENTS = 2


def response_event(kind: str, sequence_number: int, response: Json) -> Json:
    """The data of `response.<kind>`: the response at that moment."""
    return {"type": f"response.{kind}", "sequence_number": sequence_number, "response": response}


def item_event(kind: str, sequence_number: int, output_index: int, item: Json) -> Json:
    """The data of `response.output_item.<kind>` (added or done)."""
    return {
        "type": f"response.output_item.{kind}",
        "sequence_number": sequence_number,
        "output_index": output_index,
        "item": item,
    }


def text_delta(sequence_number: int, item_id: str, output_index: int, content_index: int, delta: str) -> Json:
    """The data of `response.output_text.delta`."""
    return {
        "type": "response.output_text.delta",
        "sequence_number": sequence_number,
        "item_id": item_id,
        "output_index": output_index,
        "content_index": content_index,
        "delta": delta,
        "logprobs": [],
    }


@dataclass(frozen=True)
class ResponseStream:
    """The events transitions.py writes for a response's create and moves."""

    thread: str = "id"
    run: str | None = "id"
    unit: int = 1

    def on_create(self, raw: Raw, row: Row) -> list[tuple[str, Json]]:
        data = load_response(raw, row).to_api()
        return [
            ("response.created", response_event("created", 0, data)),
            (f"response.{row['status']}", response_event(row["status"], 1, data)),
        ]

    def on_move(self, raw: Raw, row: Row) -> list[tuple[str, Json]]:
        data = load_response(raw, row).to_api()
        return [(f"response.{row['status']}", response_event(row["status"], row["sequence_number"] - 1, data))]


register(responses, ResponseStream())
