"""OpenAI leases across processes, on every backend: a worker killed mid-run loses its run to the
next worker once its lease expires, and the run is finished exactly once; a worker that stalled
past its lease cannot overwrite its successor."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from tests.conftest import FakeClock
from tests.factories import USAGE, assistant_id, reply_in_progress, thread_id
from tests.test_workers import _worker, stalled_after_its_claim
from threadstore import ConflictError, Run, Store

LEASE = 1


def _claim_and_die(store: Store, _index: int, claimed: Any) -> None:
    run = store.runs.claim_next(lease_seconds=LEASE)
    assert run is not None
    reply_in_progress(store, run, "Half an ans")
    claimed.set()
    time.sleep(600)  # killed here, holding the run


def _claim_and_finish(store: Store, _index: int) -> tuple[str, int]:
    run = store.runs.claim_next(lease_seconds=LEASE)
    assert run is not None
    reply_in_progress(store, run, "A whole answer.")  # completed with the run
    done = store.runs.complete(run.id, usage=USAGE, attempt=run.attempt)
    return done.id, done.attempt


def test_a_worker_killed_mid_run_loses_the_run_to_the_next_after_its_lease(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    run = store.runs.create(thread_id(store), assistant_id=assistant_id(store))
    context = multiprocessing.get_context("fork")
    results, claimed = context.Queue(), context.Event()
    text = store_url.render_as_string(hide_password=False)
    doomed = context.Process(target=_worker, args=(_claim_and_die, text, clock.now, (0, claimed), results))
    doomed.start()
    assert claimed.wait(timeout=60)
    assert doomed.pid is not None
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.join(timeout=30)
    assert doomed.exitcode == -signal.SIGKILL

    assert store.runs.requeue_stale() == []  # the lease still holds
    clock.advance(LEASE)
    assert [r.id for r in store.runs.requeue_stale()] == [run.id]
    successor = context.Process(target=_worker, args=(_claim_and_finish, text, clock.now, (1,), results))
    successor.start()
    assert results.get(timeout=60) == ("ok", (run.id, 2))
    successor.join(timeout=30)

    finished = store.runs.get(run.id)
    assert (finished.status, finished.attempt) == ("completed", 2)
    events = [event.event for event in store.events.list(run_id=run.id)]
    assert events.count("thread.run.completed") == 1 and events.count("thread.run.in_progress") == 2
    messages = store.messages.list(run.thread_id, order="asc").data
    assert [(m.status, m.incomplete_details) for m in messages] == [
        ("incomplete", {"reason": "run_failed"}),
        ("completed", None),
    ]


def _stalled_worker(store: Store, _index: int, claimed: Any, resume: Any) -> list[str]:
    run = store.runs.claim_next(lease_seconds=LEASE)
    assert run is not None
    claimed.set()
    assert resume.wait(timeout=60)  # stalls; meanwhile its lease runs out and the run is redone
    refused = []
    writes: list[Callable[[], Run]] = [
        lambda: store.runs.heartbeat(run.id, attempt=run.attempt),
        lambda: store.runs.fail(run.id, code="server_error", message="late", attempt=run.attempt),
        lambda: store.runs.complete(run.id, attempt=run.attempt),
    ]
    for write in writes:
        try:
            write()
            refused.append("overwrote")
        except ConflictError as error:
            refused.append(type(error).__name__)
    return refused


def test_a_stale_worker_in_another_process_cannot_overwrite_its_successor(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    run = store.runs.create(thread_id(store), assistant_id=assistant_id(store))
    stale, results, resume = stalled_after_its_claim(_stalled_worker, store_url, clock)
    clock.advance(LEASE)
    assert [r.id for r in store.runs.requeue_stale()] == [run.id]
    successor = store.runs.claim_next(lease_seconds=LEASE)
    assert successor is not None and successor.attempt == 2
    store.runs.complete(run.id, usage=USAGE, attempt=2)
    resume.set()
    assert results.get(timeout=60) == ("ok", ["ConflictError"] * 3)
    stale.join(timeout=30)
    done = store.runs.get(run.id)
    assert (done.status, done.usage is not None, done.last_error) == ("completed", True, None)
