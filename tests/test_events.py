"""The event stream: every create and status move writes its event in the same transaction, with
the API's stream event names and the object's `to_api()` at that moment as data; read back in
order from any cursor. Runs against both stores on both backends (the `store` fixture)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from openai.types.beta import AssistantStreamEvent
from pydantic import TypeAdapter

from tests.conftest import (
    OPEN_STORE,
    SKIP_POSTGRES,
    FakeClock,
    count_as_admin,
)
from tests.factories import CALL, assistant_id, thread_id
from tests.test_connections import terminate_connections_of
from tests.test_status_writer import every_verb
from tests.test_workers import _worker
from threadstore import ConflictError, InvalidTransitionError, Store, ValidationError, fastsql
from threadstore.events import wakeups
from threadstore.events.api import Event
from threadstore.scope import RawUnit
from threadstore.types import MessageContentPart

STREAM_EVENT: TypeAdapter[AssistantStreamEvent] = TypeAdapter(AssistantStreamEvent)
USAGE = {"prompt_tokens": 3, "completion_tokens": 2}


def names(events: list[Event]) -> list[str]:
    return [event.event for event in events]


def a_run_that_completes(store: Store) -> tuple[str, str]:
    """A run on a new thread that writes a message in a step and completes; its thread and run."""
    thread = store.threads.create().id
    run = store.runs.create(thread, assistant_id=assistant_id(store)).id
    store.runs.start(run)
    message = store.messages.create(thread, role="assistant", content="", run_id=run, status="in_progress")
    details = {"type": "message_creation", "message_creation": {"message_id": message.id}}
    step = store.run_steps.create(run, step_details=details).id
    store.run_steps.complete(step, usage=USAGE)
    store.runs.complete(run, usage=USAGE)
    return thread, run


def test_a_run_streams_the_apis_events_in_the_order_they_happened(store: Store) -> None:
    thread, _ = a_run_that_completes(store)
    assert names(store.events.list(thread_id=thread)) == [
        "thread.created",
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.completed",
        "thread.message.completed",  # the run's end completes its message, before the run's event
        "thread.run.completed",
    ]


def test_every_event_is_a_stream_event_of_the_openai_sdk(store: Store) -> None:
    thread, _ = a_run_that_completes(store)
    for event in store.events.list(thread_id=thread):
        STREAM_EVENT.validate_python({"event": event.event, "data": event.data})


def test_each_status_event_carries_the_object_as_it_was_at_that_moment(store: Store) -> None:
    thread, _ = a_run_that_completes(store)
    statuses = [
        (event.event.rsplit(".", 1)[1], event.data["status"])
        for event in store.events.list(thread_id=thread)
        if not event.event.endswith(".created") and event.event != "thread.created"
    ]
    assert statuses and all(status == data for status, data in statuses)


def test_a_steps_end_event_shows_its_usage(store: Store) -> None:
    thread, _ = a_run_that_completes(store)
    (completed,) = [e for e in store.events.list(thread_id=thread) if e.event == "thread.run.step.completed"]
    assert completed.data["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


@pytest.mark.parametrize(
    "details",
    [{"type": "tool_calls", "tool_calls": [CALL]}, {"type": "message_creation", "message_creation": None}],
    ids=["tool_calls", "message_creation"],
)
def test_a_steps_answers_and_events_are_what_a_read_of_it_returns(store: Store, details: dict[str, Any]) -> None:
    # A step's create and end build their answer and their events from the row the unit holds,
    # not from a read: each must be what a read of the step returns at that moment.
    thread = store.threads.create().id
    run = store.runs.start(store.runs.create(thread, assistant_id=assistant_id(store)).id).id
    if details["type"] == "message_creation":
        message = store.messages.create(thread, role="assistant", content="hi", run_id=run, status="in_progress")
        details = {"type": "message_creation", "message_creation": {"message_id": message.id}}
    created = store.run_steps.create(run, step_details=details, metadata={"k": "v"})
    assert created.to_api() == store.run_steps.get(created.id).to_api()
    failed = store.run_steps.fail(created.id, code="server_error", message="boom", usage=USAGE)
    assert failed.to_api() == store.run_steps.get(created.id).to_api()
    events = {e.event: e.data for e in store.events.list(run_id=run) if e.event.startswith("thread.run.step.")}
    assert events["thread.run.step.created"] == events["thread.run.step.in_progress"] == created.to_api()
    assert events["thread.run.step.failed"] == failed.to_api()


def test_a_failed_runs_steps_fail_with_its_error_in_their_events(store: Store) -> None:
    thread = store.threads.create().id
    run = store.runs.start(store.runs.create(thread, assistant_id=assistant_id(store)).id).id
    store.run_steps.create(run, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    store.runs.fail(run, code="rate_limit_exceeded", message="slow down")
    events = store.events.list(run_id=run)
    assert names(events)[-2:] == ["thread.run.step.failed", "thread.run.failed"]
    assert events[-2].data["last_error"] == {"code": "rate_limit_exceeded", "message": "slow down"}


def test_a_run_followed_by_its_id_has_its_own_events_only(store: Store) -> None:
    _, run = a_run_that_completes(store)
    events = store.events.list(run_id=run)
    assert names(events)[0] == "thread.run.created" and names(events)[-1] == "thread.run.completed"
    assert {event.run_id for event in events} == {run}


def a_second_run_on(store: Store, thread: str) -> str:
    """Another run on `thread` (whose first has ended), started and completed."""
    run = store.runs.create(thread, assistant_id=assistant_id(store)).id
    store.runs.start(run)
    store.runs.complete(run)
    return run


def test_a_runs_events_are_read_apart_from_its_threads_other_runs(store: Store) -> None:
    thread, first = a_run_that_completes(store)
    second = a_second_run_on(store, thread)
    every = store.events.list(thread_id=thread)
    for run in (first, second):
        own = [event for event in every if event.run_id == run]
        assert store.events.list(run_id=run) == own
        assert store.events.list(run_id=run, after=own[0].id) == own[1:]
        assert store.events.list(thread_id=thread, run_id=run) == own


def test_the_events_of_a_run_that_does_not_exist_are_none(store: Store) -> None:
    a_run_that_completes(store)
    assert store.events.list(run_id="run_none") == []


def test_events_are_numbered_in_increasing_order(store: Store) -> None:
    thread, _ = a_run_that_completes(store)
    ids = [int(event.id) for event in store.events.list(thread_id=thread)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_reading_after_a_cursor_gives_exactly_the_rest(store: Store) -> None:
    thread, _ = a_run_that_completes(store)
    every = store.events.list(thread_id=thread)
    for cut in range(len(every)):
        assert store.events.list(thread_id=thread, after=every[cut].id) == every[cut + 1 :]


def test_a_limit_reads_the_oldest_first(store: Store) -> None:
    thread, _ = a_run_that_completes(store)
    assert store.events.list(thread_id=thread, limit=3) == store.events.list(thread_id=thread)[:3]


@pytest.mark.parametrize("after", ["", "abc", "-1", "1.5", "99999999999999999999", "١٢"])
def test_a_bad_cursor_is_refused(store: Store, after: str) -> None:
    with pytest.raises(ValidationError):
        store.events.list(after=after)


def test_a_change_rolled_back_writes_no_event(store: Store) -> None:
    thread, assistant = store.threads.create().id, assistant_id(store)
    before = store.events.list(thread_id=thread)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.runs.create(thread, assistant_id=assistant)
        raise RuntimeError("the caller gives up")
    assert store.events.list(thread_id=thread) == before


def test_a_refused_move_writes_no_event(store: Store) -> None:
    thread = store.threads.create().id
    run = store.runs.create(thread, assistant_id=assistant_id(store)).id
    before = store.events.list(thread_id=thread)
    with pytest.raises(InvalidTransitionError):
        store.runs.complete(run)  # a queued run cannot complete
    assert store.events.list(thread_id=thread) == before


def test_deleting_a_thread_deletes_its_events(store: Store) -> None:
    thread, _ = a_run_that_completes(store)
    other, _ = a_run_that_completes(store)
    store.threads.delete(thread)
    assert store.events.list(thread_id=thread) == []
    assert store.events.list(thread_id=other)


def test_deleting_a_run_deletes_its_events_and_keeps_the_threads_own(store: Store) -> None:
    thread, run = a_run_that_completes(store)
    store.runs.delete(run)
    assert store.events.list(run_id=run) == []
    assert names(store.events.list(thread_id=thread)) == ["thread.created"]


def test_deleting_a_run_keeps_the_events_of_its_threads_other_runs(store: Store) -> None:
    thread, first = a_run_that_completes(store)
    second = a_second_run_on(store, thread)
    kept = store.events.list(run_id=second)
    store.runs.delete(first)
    assert store.events.list(run_id=first) == []
    assert store.events.list(run_id=second) == kept
    assert names(store.events.list(thread_id=thread)) == ["thread.created", *names(kept)]


def test_an_event_is_an_sse_frame(store: Store) -> None:
    thread = store.threads.create().id
    (created,) = store.events.list(thread_id=thread)
    frame = created.to_sse()
    assert frame.startswith(f"id: {created.id}\nevent: thread.created\ndata: {{")
    assert frame.endswith("}\n\n") and frame.count("\n") == 4


def test_a_store_opened_without_events_writes_none(store_url: sa.URL, store_kind: str) -> None:
    with OPEN_STORE[store_kind](store_url, clock=FakeClock(), events=False) as quiet:
        a_run_that_completes(quiet)
        assert quiet.events.list() == []


def test_importing_messages_streams_each_of_them(store: Store) -> None:
    thread = thread_id(store)
    store.messages.create_many(thread, [{"role": "user", "content": f"m{i}"} for i in range(5)])
    created = [e for e in store.events.list(thread_id=thread) if e.event == "thread.message.created"]
    assert [e.data["content"][0]["text"]["value"] for e in created] == [f"m{i}" for i in range(5)]


def test_a_unit_with_more_events_than_one_insert_takes_writes_them_all_in_order(store: Store) -> None:
    thread = thread_id(store)
    count = 450  # SQLite's INSERTs take at most 199 events each: three statements
    store.messages.create_many(thread, [{"role": "user", "content": f"m{i}"} for i in range(count)])
    created = [e for e in store.events.list(thread_id=thread, limit=1000) if e.event == "thread.message.created"]
    assert [e.data["content"][0]["text"]["value"] for e in created] == [f"m{i}" for i in range(count)]


# --- following ---------------------------------------------------------------------------------


def test_following_a_run_that_has_ended_replays_its_events_and_ends(store: Store) -> None:
    _, run = a_run_that_completes(store)
    assert list(store.events.follow(run_id=run)) == store.events.list(run_id=run)


def test_a_follower_resumed_from_a_cursor_gets_exactly_the_rest(store: Store) -> None:
    _, run = a_run_that_completes(store)
    every = store.events.list(run_id=run)
    assert list(store.events.follow(run_id=run, after=every[3].id)) == every[4:]


def test_following_a_thread_ends_after_the_timeout_without_new_events(store: Store) -> None:
    thread, _ = a_run_that_completes(store)
    assert list(store.events.follow(thread_id=thread, timeout=0.2)) == store.events.list(thread_id=thread)


def test_a_follower_receives_each_event_as_it_commits_until_the_run_ends(store: Store) -> None:
    thread = store.threads.create().id
    run = store.runs.create(thread, assistant_id=assistant_id(store)).id
    received: list[Event] = []
    follower = threading.Thread(target=lambda: received.extend(store.events.follow(run_id=run, interval=0.01)))
    follower.start()
    store.runs.start(run)
    step = store.run_steps.create(run, step_details={"type": "tool_calls", "tool_calls": []}).id
    store.run_steps.complete(step)
    store.runs.complete(run)
    follower.join(timeout=30)
    assert not follower.is_alive()
    assert received == store.events.list(run_id=run)
    assert names(received)[-1] == "thread.run.completed"


@pytest.mark.parametrize(
    "arguments",
    [
        {"thread_id": 1},
        {"run_id": "r", "timeout": -1},
        {"run_id": "r", "interval": "fast"},
        {"run_id": "r", "after": "x"},
    ],
)
def test_a_follow_with_bad_arguments_is_refused(store: Store, arguments: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        next(iter(store.events.follow(**arguments)))  # type: ignore[arg-type]


# --- wake-ups (PostgreSQL: LISTEN/NOTIFY) ------------------------------------------------------


def follow_in_a_thread(store: Store, run: str, interval: float) -> tuple[threading.Thread, list[Event]]:
    received: list[Event] = []
    follower = threading.Thread(
        target=lambda: received.extend(store.events.follow(run_id=run, interval=interval)), daemon=True
    )
    follower.start()
    return follower, received


def each_received_the_whole_run(store: Store, followers: list[tuple[threading.Thread, list[Event]]], run: str) -> None:
    """Each follower ended with the run, having received every one of its events."""
    for follower, received in followers:
        follower.join(timeout=20)
        assert not follower.is_alive()
        assert received == store.events.list(run_id=run)


def listeners(application: str) -> int:
    """How many connections of `application` are listening for events."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name AND query LIKE 'LISTEN%'"
    return count_as_admin(query, name=application)


@SKIP_POSTGRES
def test_a_commit_wakes_its_followers_at_once_on_postgres(named_store: tuple[Store, str]) -> None:
    store, application = named_store
    thread = store.threads.create().id
    run = store.runs.create(thread, assistant_id=assistant_id(store)).id
    # An interval far longer than the test may take: only a notification can wake them in time.
    followers = [follow_in_a_thread(store, run, interval=600) for _ in range(20)]
    for _ in range(100):
        if listeners(application) == 1:
            break
        time.sleep(0.05)
    assert listeners(application) == 1  # one listening connection for the store, not one per follower
    store.runs.start(run)
    store.runs.complete(run)
    each_received_the_whole_run(store, followers, run)


@SKIP_POSTGRES
def test_followers_go_on_when_the_listening_connection_drops(named_store: tuple[Store, str]) -> None:
    store, application = named_store
    thread = store.threads.create().id
    run = store.runs.create(thread, assistant_id=assistant_id(store)).id
    follower, received = follow_in_a_thread(store, run, interval=0.05)
    for _ in range(100):
        if listeners(application) == 1:
            break
        time.sleep(0.05)
    assert terminate_connections_of(application) >= 1
    store.runs.start(run)
    store.runs.complete(run)
    follower.join(timeout=20)
    assert received == store.events.list(run_id=run)
    for _ in range(100):
        if listeners(application) == 1:
            break
        time.sleep(0.05)
    assert listeners(application) == 1  # and the store listens again


def sqlite_followers(store: Store, run: str, count: int, interval: float) -> list[tuple[threading.Thread, list[Event]]]:
    followers = [follow_in_a_thread(store, run, interval=interval) for _ in range(count)]
    for _ in range(100):  # until each waits (the probe runs only while someone does)
        if sum(store.events.wakeups._intervals.values()) == count:
            break
        time.sleep(0.05)
    return followers


def test_a_commit_by_another_connection_wakes_sqlite_followers_through_one_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wakeups, "FALLBACK", 600)  # only the probe can wake them in time
    url = f"sqlite:///{tmp_path / 'probed.db'}"
    with Store(url) as store, Store(url) as writer:
        thread = store.threads.create().id
        run = store.runs.create(thread, assistant_id=assistant_id(store)).id
        followers = sqlite_followers(store, run, count=20, interval=0.01)
        probes = [t for t in threading.enumerate() if t.name == "threadstore-wakeups"]
        writer.runs.start(run)
        writer.runs.complete(run)
        each_received_the_whole_run(store, followers, run)
        assert len(probes) == 1  # one probe for the store's 20 followers


def test_a_sqlite_follower_is_not_woken_without_a_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wakeups, "FALLBACK", 600)
    with Store(f"sqlite:///{tmp_path / 'quiet.db'}") as store:
        run = store.runs.create(store.threads.create().id, assistant_id=assistant_id(store)).id
        generation = store.events.wakeups.generation()
        [(follower, received)] = sqlite_followers(store, run, count=1, interval=0.01)
        time.sleep(0.3)  # thirty probes
        assert store.events.wakeups.generation() == generation  # none saw a change: no read
        store.runs.cancel(run)
        follower.join(timeout=20)
        assert [event.event for event in received][-1] == "thread.run.cancelled"


# --- deltas ------------------------------------------------------------------------------------


def streaming_message(store: Store) -> tuple[str, str]:
    thread = store.threads.create().id
    run = store.runs.start(store.runs.create(thread, assistant_id=assistant_id(store)).id).id
    message = store.messages.create(thread, role="assistant", content="", run_id=run, status="in_progress").id
    return thread, message


def test_appended_text_joins_the_message_and_streams_as_deltas(store: Store) -> None:
    thread, message = streaming_message(store)
    store.messages.append_text(message, text="Hel")
    appended = store.messages.append_text(message, text="lo!")
    assert appended.content[-1]["text"]["value"] == "Hello!"
    deltas = [e for e in store.events.list(thread_id=thread) if e.event == "thread.message.delta"]
    assert [d.data["delta"]["content"][0]["text"]["value"] for d in deltas] == ["Hel", "lo!"]
    index = len(appended.content) - 1
    assert {d.data["delta"]["content"][0]["index"] for d in deltas} == {index}
    for delta in deltas:
        STREAM_EVENT.validate_python({"event": delta.event, "data": delta.data})


def test_text_after_a_part_that_is_not_text_starts_a_new_part(store: Store) -> None:
    thread = store.threads.create().id
    run = store.runs.start(store.runs.create(thread, assistant_id=assistant_id(store)).id).id
    image: list[MessageContentPart] = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
    message = store.messages.create(thread, role="assistant", content=image, run_id=run, status="in_progress").id
    appended = store.messages.append_text(message, text="a caption")
    assert [part["type"] for part in appended.content] == ["image_url", "text"]
    (delta,) = [e for e in store.events.list(thread_id=thread) if e.event == "thread.message.delta"]
    assert delta.data["delta"]["content"][0]["index"] == 1


def test_text_is_not_appended_to_a_completed_message_and_no_delta_is_written(store: Store) -> None:
    thread, message = streaming_message(store)
    store.messages.complete(message)
    before = store.events.list(thread_id=thread)
    with pytest.raises(ConflictError):
        store.messages.append_text(message, text="late")
    assert store.events.list(thread_id=thread) == before


@pytest.mark.parametrize("text", ["", 5, None])
def test_appending_what_is_not_text_is_refused(store: Store, text: object) -> None:
    _, message = streaming_message(store)
    with pytest.raises(ValidationError):
        store.messages.append_text(message, text=text)  # type: ignore[arg-type]


def test_new_step_details_stream_as_a_step_delta(store: Store) -> None:
    thread = store.threads.create().id
    run = store.runs.start(store.runs.create(thread, assistant_id=assistant_id(store)).id).id
    step = store.run_steps.create(run, step_details={"type": "tool_calls", "tool_calls": []}).id
    store.run_steps.update_details(step, step_details={"type": "tool_calls", "tool_calls": [CALL]})
    (delta,) = [e for e in store.events.list(run_id=run) if e.event == "thread.run.step.delta"]
    assert delta.data["delta"]["step_details"]["tool_calls"][0]["index"] == 0
    STREAM_EVENT.validate_python({"event": delta.event, "data": delta.data})


# --- order under concurrent writers ------------------------------------------------------------

WRITERS, APPENDS = 4, 40


def _append_pieces(store: Store, index: int, message: str) -> int:
    for piece in range(APPENDS):
        store.messages.append_text(message, text=f"<{index}:{piece}>")
    return APPENDS


def follow_while_they_write(
    store: Store, url: sa.URL, clock: FakeClock, messages: list[str], thread_id: str | None = None
) -> tuple[str, list[Event]]:
    """One writer process per message appends to it while a follower (of `thread_id`, or of every
    thread) reads; the cursor the follower started from, and what it received."""
    start = store.events.list(thread_id=thread_id)[-1].id
    received: list[Event] = []

    def follow() -> None:
        for event in store.events.follow(thread_id=thread_id, after=start, interval=0.005, timeout=60):
            received.append(event)
            if len(received) == WRITERS * APPENDS:
                return

    follower = threading.Thread(target=follow)
    follower.start()
    written = in_processes_each(url, clock, messages)
    follower.join(timeout=60)
    assert sum(written) == WRITERS * APPENDS
    return start, received


def pieces(received: list[Event], message: str) -> list[str]:
    return [e.data["delta"]["content"][0]["text"]["value"] for e in received if e.data["id"] == message]


def test_a_follower_sees_every_committed_event_of_concurrent_writers_once_and_in_order(
    store_url: sa.URL, clock: FakeClock
) -> None:
    with Store(store_url, clock=clock) as store:
        thread = store.threads.create().id
        run = store.runs.start(store.runs.create(thread, assistant_id=assistant_id(store)).id).id
        # Each writer appends to its own message: transactions of one thread that no row lock orders.
        messages = [
            store.messages.create(thread, role="assistant", content="", run_id=run, status="in_progress").id
            for _ in range(WRITERS)
        ]
        start, received = follow_while_they_write(store, store_url, clock, messages, thread_id=thread)
        assert received == store.events.list(thread_id=thread, after=start, limit=1000)  # none skipped
        assert len({event.id for event in received}) == WRITERS * APPENDS  # none twice
        for index, message in enumerate(messages):
            assert pieces(received, message) == [f"<{index}:{piece}>" for piece in range(APPENDS)]
            assert store.messages.get(message).content[0]["text"]["value"] == "".join(pieces(received, message))


def test_a_follower_of_every_thread_sees_every_committed_event_of_concurrent_writers_once_and_in_order(
    store_url: sa.URL, clock: FakeClock
) -> None:
    with Store(store_url, clock=clock) as store:
        messages = []
        for _ in range(WRITERS):  # a thread each: no lock of a thread orders their events
            thread = store.threads.create().id
            run = store.runs.start(store.runs.create(thread, assistant_id=assistant_id(store)).id).id
            messages.append(
                store.messages.create(thread, role="assistant", content="", run_id=run, status="in_progress").id
            )
        start, received = follow_while_they_write(store, store_url, clock, messages)
        assert received == store.events.list(after=start, limit=1000)  # none skipped, in id order
        for index, message in enumerate(messages):
            assert pieces(received, message) == [f"<{index}:{piece}>" for piece in range(APPENDS)]


def test_a_follower_of_every_thread_gets_each_threads_events(store: Store) -> None:
    start = store.events.list()[-1].id if store.events.list() else None
    first, _ = a_run_that_completes(store)
    second = store.threads.create().id
    followed = list(store.events.follow(after=start, timeout=0))
    assert followed == store.events.list(after=start)
    assert {event.thread_id for event in followed} == {first, second}
    assert followed[-1].event == "thread.created"


def in_processes_each(url: sa.URL, clock: FakeClock, messages: list[str]) -> list[int]:
    """Run `_append_pieces` in one new process per message, forked from a server process that
    has no threads: a fork of this process would copy its follower's and its store's threads'
    locks (SQLite's own among them) in whatever state they are in."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.test_events"])  # imported once, not once a process
    results = context.Queue()
    text = url.render_as_string(hide_password=False)
    processes = [
        context.Process(target=_worker, args=(_append_pieces, text, clock.now, (i, message), results))
        for i, message in enumerate(messages)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    return [detail for _, detail in outcomes]


# --- retention ---------------------------------------------------------------------------------


def test_pruning_deletes_old_events_of_ended_runs_and_keeps_the_rest(store: Store, clock: FakeClock) -> None:
    thread, ended = a_run_that_completes(store)
    going = store.runs.start(store.runs.create(thread, assistant_id=assistant_id(store)).id).id
    clock.advance(3600)
    _, recent = a_run_that_completes(store)
    old = len(store.events.list(run_id=ended))
    assert store.events.prune(older_than=timedelta(minutes=30), batch=2) == old
    assert store.events.list(run_id=ended) == []
    assert store.events.list(run_id=recent)  # younger than the cut
    assert [e.event for e in store.events.list(run_id=going)] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
    ]  # its run goes on
    assert store.events.list(thread_id=thread)[0].event == "thread.created"  # the thread's own


def test_pruning_deletes_the_events_of_ended_langgraph_runs(store: Store, clock: FakeClock) -> None:
    thread = store.langgraph.threads.create().thread_id
    run = store.langgraph.runs.create(thread, assistant_id="agent").run_id
    claimed = store.langgraph.runs.claim_next()
    assert claimed is not None
    store.langgraph.runs.finish(run, attempt=1, status="success")
    clock.advance(120)
    assert store.events.prune(older_than=timedelta(seconds=60)) == 2
    assert store.events.list(run_id=run) == []


@pytest.mark.parametrize("older_than", [60, timedelta(seconds=-1), None])
def test_pruning_needs_a_non_negative_timedelta(store: Store, older_than: object) -> None:
    with pytest.raises(ValidationError):
        store.events.prune(older_than=older_than)  # type: ignore[arg-type]


# --- the event lock is the last a unit takes -----------------------------------------------------


@pytest.mark.parametrize("store_kind", ["sync"])  # records the sync executor's statements
def test_a_unit_writes_its_events_after_every_other_write(
    store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    units: list[list[str]] = [[]]
    run, run_many, finish = fastsql.Raw._run, fastsql.Raw.execute_many, RawUnit._finish

    def recording(self: fastsql.Raw, sql: str, params: Any) -> Any:
        units[-1].append(sql)
        return run(self, sql, params)

    def recording_many(self: fastsql.Raw, statement: fastsql.Statement, rows: Any) -> None:
        units[-1].append(statement.prepare(self.dialect).sql)
        run_many(self, statement, rows)

    def ending(self: RawUnit, *, commit: bool) -> None:
        finish(self, commit=commit)
        units.append([])

    monkeypatch.setattr(fastsql.Raw, "_run", recording)
    monkeypatch.setattr(fastsql.Raw, "execute_many", recording_many)
    monkeypatch.setattr(RawUnit, "_finish", ending)
    every_verb(store, clock)
    writes_after_events = [
        sql
        for unit in units
        for position, sql in enumerate(unit)
        if any(earlier.startswith("INSERT INTO threadstore_events") for earlier in unit[:position])
        and not sql.startswith("INSERT INTO threadstore_events")
    ]
    assert sum(sql.startswith("INSERT INTO threadstore_events") for unit in units for sql in unit) > 10
    assert writes_after_events == []
