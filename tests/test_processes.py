"""Lifecycle operations from several processes at once."""

from __future__ import annotations

import multiprocessing

import sqlalchemy as sa

from tests.conftest import FakeClock
from tests.factories import assistant_id
from threadstore import Store


def _expire_overdue(url: str, now_seconds: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    clock = FakeClock()
    clock.advance(now_seconds - clock.seconds)
    with Store(url, clock=clock, migrate_on_open=False) as store:
        results.put([run.id for run in store.runs.expire_overdue()])


def test_expire_overdue_from_two_processes_expires_each_run_once(
    store: Store, store_url: sa.URL, clock: FakeClock
) -> None:
    assistant = assistant_id(store)
    overdue = {store.runs.create(store.threads.create().id, assistant_id=assistant).id for _ in range(60)}
    clock.advance(600)
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    url = store_url.render_as_string(hide_password=False)
    workers = [context.Process(target=_expire_overdue, args=(url, clock.seconds, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    expired = [run_id for _ in workers for run_id in results.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(expired) == sorted(overdue)
    assert {store.runs.get(run_id).status for run_id in overdue} == {"expired"}
