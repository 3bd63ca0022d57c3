"""Keyset pagination: every page walk, forward or backward, yields each object exactly once, in
order, also when many objects share one second; has_more is exact."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import FakeClock
from threadstore import NotFoundError, Store, ValidationError
from threadstore.pagination import Page
from threadstore.types import Order

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def fill(store: Store, clock: FakeClock, gaps: list[int]) -> tuple[str, list[str]]:
    """A thread with one message per gap, the clock moved by each gap (0: the same second)."""
    thread = store.threads.create().id
    ids = []
    for gap in gaps:
        clock.advance(gap)
        ids.append(store.messages.create(thread, role="user", content="m").id)
    return thread, ids


def walk_forward(store: Store, thread: str, order: Order, limit: int) -> list[str]:
    seen: list[str] = []
    page: Page[Any] | None = None
    while page is None or page.has_more:
        page = store.messages.list(thread, order=order, limit=limit, after=page.last_id if page else None)
        seen += [m.id for m in page]
    return seen


gaps = st.lists(st.sampled_from([0, 0, 0, 1, 5]), min_size=0, max_size=30)


@SETTINGS
@given(gaps=gaps, limit=st.integers(1, 7), order=st.sampled_from(["asc", "desc"]))
def test_walking_forward_yields_every_object_once_in_order(
    store: Store, clock: FakeClock, gaps: list[int], limit: int, order: Order
) -> None:
    thread, ids = fill(store, clock, gaps)
    expected = ids if order == "asc" else ids[::-1]
    assert walk_forward(store, thread, order, limit) == expected


@SETTINGS
@given(gaps=gaps.filter(bool), limit=st.integers(1, 7), order=st.sampled_from(["asc", "desc"]))
def test_walking_backward_yields_every_object_once_in_order(
    store: Store, clock: FakeClock, gaps: list[int], limit: int, order: Order
) -> None:
    thread, ids = fill(store, clock, gaps)
    expected = ids if order == "asc" else ids[::-1]
    collected = [expected[-1]]
    cursor = expected[-1]
    while True:
        page = store.messages.list(thread, order=order, limit=limit, before=cursor)
        collected[:0] = [m.id for m in page]
        if not page.has_more:
            break
        assert page.first_id is not None
        cursor = page.first_id
    assert collected == expected


def test_many_objects_in_one_second_keep_creation_order(store: Store, clock: FakeClock) -> None:
    thread, ids = fill(store, clock, [0] * 60)
    assert walk_forward(store, thread, "asc", 7) == ids


def test_default_page_is_twenty_newest_first(store: Store, clock: FakeClock) -> None:
    thread, ids = fill(store, clock, [1] * 25)
    page = store.messages.list(thread)
    assert [m.id for m in page] == ids[::-1][:20]
    assert page.has_more


def test_has_more_is_false_on_an_exactly_full_last_page(store: Store, clock: FakeClock) -> None:
    thread, _ = fill(store, clock, [0] * 10)
    assert not store.messages.list(thread, limit=10).has_more
    assert store.messages.list(thread, limit=9).has_more


def test_empty_list_has_null_ids(store: Store) -> None:
    page = store.messages.list(store.threads.create().id).to_api()
    assert (page["data"], page["first_id"], page["last_id"], page["has_more"]) == ([], None, None, False)


def test_after_and_before_together_bound_the_page(store: Store, clock: FakeClock) -> None:
    thread, ids = fill(store, clock, [1] * 6)
    page = store.messages.list(thread, order="asc", after=ids[0], before=ids[4])
    assert [m.id for m in page] == ids[1:4]


def test_a_cursor_from_another_list_is_refused(store: Store, clock: FakeClock) -> None:
    _, ids = fill(store, clock, [1])
    other, _ = fill(store, clock, [1])
    with pytest.raises(ValidationError):
        store.messages.list(other, after=ids[0])


@pytest.mark.parametrize("repository", ["assistants", "threads"])
def test_top_level_lists_walk_every_object(store: Store, clock: FakeClock, repository: str) -> None:
    repo = getattr(store, repository)
    make = (lambda: repo.create(model="m")) if repository == "assistants" else repo.create
    ids = []
    for _ in range(5):
        ids.append(make().id)
    seen: list[str] = []
    page = repo.list(order="asc", limit=2)
    seen += [o.id for o in page]
    while page.has_more:
        page = repo.list(order="asc", limit=2, after=page.last_id)
        seen += [o.id for o in page]
    assert seen == ids


def test_runs_and_steps_page_like_messages(store: Store, clock: FakeClock) -> None:
    assistant = store.assistants.create(model="m").id
    thread = store.threads.create().id
    runs = []
    for _ in range(3):
        run = store.runs.create(thread, assistant_id=assistant)
        store.runs.cancel(run.id)
        runs.append(run.id)
    page = store.runs.list(thread, limit=2, order="asc")
    assert ([r.id for r in page], page.has_more) == (runs[:2], True)
    live = store.runs.create(thread, assistant_id=assistant).id
    store.runs.start(live)
    steps = [store.run_steps.create(live, step_details={"type": "tool_calls", "tool_calls": []}).id for _ in range(3)]
    assert [s.id for s in store.run_steps.list(live, order="asc", after=steps[0])] == steps[1:]


OWNED_LISTS = ["messages", "runs", "run_steps"]


@pytest.mark.parametrize("repository", OWNED_LISTS)
def test_a_list_of_a_missing_owner_is_not_found(store: Store, repository: str) -> None:
    with pytest.raises(NotFoundError):
        getattr(store, repository).list("thread_missing" if repository != "run_steps" else "run_missing")


@pytest.mark.parametrize("repository", OWNED_LISTS)
def test_a_list_of_no_owner_is_not_found_rather_than_everyone_s(store: Store, repository: str) -> None:
    run_id = store.runs.create(store.threads.create().id, assistant_id=store.assistants.create(model="m").id).id
    store.runs.start(run_id)
    store.run_steps.create(run_id, step_details={"type": "tool_calls", "tool_calls": []})
    store.messages.create(store.threads.create().id, role="user", content="x")
    with pytest.raises(NotFoundError):
        getattr(store, repository).list(None)


@pytest.mark.parametrize("repository", OWNED_LISTS)
def test_a_cursor_on_a_missing_owner_is_not_found_rather_than_refused(store: Store, repository: str) -> None:
    owner = "thread_missing" if repository != "run_steps" else "run_missing"
    with pytest.raises(NotFoundError):
        getattr(store, repository).list(owner, after="msg_somewhere")


def test_an_owner_with_nothing_in_its_list_has_an_empty_page(store: Store) -> None:
    thread = store.threads.create().id
    run = store.runs.create(thread, assistant_id=store.assistants.create(model="m").id).id
    assert (len(store.runs.list(store.threads.create().id)), len(store.run_steps.list(run))) == (0, 0)
