"""A response's stream in the event log: the Responses API's events, each validated by the
openai SDK's ResponseStreamEvent, numbered 0, 1, 2, … per response in the order they are read,
written only when the change commits, and a follow of a response that ends with its end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from tests.conftest import FakeClock
from threadstore import InvalidTransitionError, Store, fastsql

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)


def stream_a_reply(store: Store) -> str:
    created = store.responses.create(model="gpt-4o", input="Hi", background=True)
    claimed = store.responses.claim_next()
    assert claimed is not None and claimed.id == created.id
    reply = store.responses.add_output_item(created.id, item={"type": "message", "role": "assistant", "content": []})
    store.responses.append_text(created.id, item_id=reply.id, text="Hel")
    store.responses.append_text(created.id, item_id=reply.id, text="lo")
    store.responses.complete(created.id, usage={"input_tokens": 1, "output_tokens": 2})
    return created.id


def test_a_responses_lifecycle_streams_the_apis_events_in_order(store: Store) -> None:
    response = stream_a_reply(store)
    assert [event.event for event in store.events.list(run_id=response)] == [
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.output_item.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_item.done",
        "response.completed",
    ]


def test_sequence_numbers_count_from_zero_per_response(store: Store) -> None:
    first, second = stream_a_reply(store), stream_a_reply(store)
    for response in (first, second):
        events = store.events.list(run_id=response)
        assert [event.data["sequence_number"] for event in events] == list(range(len(events)))


def test_every_event_is_the_sdks_stream_event_with_its_own_name(store: Store) -> None:
    response = stream_a_reply(store)
    failing = store.responses.create(model="gpt-4o", input="Hi")
    store.responses.add_output_item(
        failing.id, item={"type": "function_call", "call_id": "c", "name": "f", "arguments": ""}
    )
    store.responses.fail(failing.id, code="server_error", message="boom")
    for event in [*store.events.list(run_id=response), *store.events.list(run_id=failing.id)]:
        parsed = STREAM_EVENT.validate_python(event.data)
        assert parsed.type == event.event == event.data["type"]


def test_the_deltas_carry_the_text_and_the_last_event_the_whole_response(store: Store) -> None:
    events = store.events.list(run_id=stream_a_reply(store))
    assert "".join(event.data["delta"] for event in events if event.event == "response.output_text.delta") == "Hello"
    assert events[-1].data["response"]["output"][0]["content"][0]["text"] == "Hello"
    assert events[-2].data["item"]["status"] == "completed"


def test_a_refused_move_streams_nothing(store: Store) -> None:
    response = stream_a_reply(store)
    before = store.events.list(run_id=response)
    with pytest.raises(InvalidTransitionError):
        store.responses.cancel(response)
    assert store.events.list(run_id=response) == before


def test_a_rolled_back_transaction_streams_nothing(store: Store) -> None:
    created = store.responses.create(model="gpt-4o", input="Hi")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.responses.complete(created.id)
        raise RuntimeError("the server crashed")
    assert [event.event for event in store.events.list(run_id=created.id)] == [
        "response.created",
        "response.in_progress",
    ]


def test_a_follow_of_a_response_replays_and_ends_with_its_terminal_event(store: Store) -> None:
    response = stream_a_reply(store)
    events = list(store.events.follow(run_id=response, timeout=5))
    assert events[-1].event == "response.completed"
    resumed = list(store.events.follow(run_id=response, after=events[3].id, timeout=5))
    assert [event.data["sequence_number"] for event in resumed] == [4, 5, 6, 7]


def test_cancelling_a_queued_response_ends_its_stream(store: Store) -> None:
    created = store.responses.create(model="gpt-4o", input="Hi", background=True)
    store.responses.cancel(created.id)
    events = list(store.events.follow(run_id=created.id, timeout=5))
    assert [(event.event, event.data["sequence_number"]) for event in events] == [
        ("response.created", 0),
        ("response.queued", 1),
        ("response.cancelled", 2),
    ]


def test_pruning_drops_the_events_of_ended_responses_only(store: Store, clock: FakeClock) -> None:
    ended = stream_a_reply(store)
    going = store.responses.create(model="gpt-4o", input="Hi").id
    clock.advance(3600)
    assert store.events.prune(older_than=timedelta(minutes=1)) == 8
    assert store.events.list(run_id=ended) == []
    assert len(store.events.list(run_id=going)) == 2


@pytest.mark.parametrize("end", ["complete", "fail", "mark_incomplete", "cancel"])
def test_an_end_reads_the_responses_output_items_once_for_its_result_and_its_event(
    store: Store, monkeypatch: pytest.MonkeyPatch, end: str
) -> None:
    created = store.responses.create(model="gpt-4o", input="Hi", background=True)
    store.responses.claim_next()
    store.responses.add_output_item(created.id, item={"type": "message", "role": "assistant", "content": []})
    reads: list[str] = []
    real = fastsql.Raw._run

    def recording(self: fastsql.Raw, sql: str, params: Any) -> Any:
        if sql.startswith("SELECT") and "FROM threadstore_response_items" in sql:
            reads.append(sql)
        return real(self, sql, params)

    monkeypatch.setattr(fastsql.Raw, "_run", recording)
    arguments = {"fail": {"code": "server_error", "message": "boom"}, "mark_incomplete": {"reason": "content_filter"}}
    ended = getattr(store.responses, end)(created.id, **arguments.get(end, {}))
    assert len(reads) == 1
    last = store.events.list(run_id=created.id)[-1]
    assert last.data["response"]["output"] == [item.to_api() for item in ended.output]
    assert [item["status"] for item in last.data["response"]["output"]] == [
        "completed" if end == "complete" else "incomplete"
    ]
