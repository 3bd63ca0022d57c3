"""A hypothesis state machine that drives the LangGraph repositories and a plain model side by side:
multitask strategies, leased claims, heartbeats, fenced finishes (current and stale attempts),
cancels and requeues, with the clock moved by rules."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule
from langgraph_sdk.schema import Run, Thread
from pydantic import TypeAdapter

from tests.conftest import FakeClock
from threadstore import ConflictError, InvalidTransitionError, NotFoundError, Store, ThreadStoreError
from threadstore.clock import unix_micros
from threadstore.langgraph.api import LangGraphRun, LangGraphThread
from threadstore.langgraph.models import runs, threads
from threadstore.langgraph.states import (
    BUSY_RUN_STATUSES,
    FINISH_STATUSES,
    MULTITASK_STRATEGIES,
    RUN,
    THREAD_STATUS_AFTER_RUN,
)
from threadstore.types import CancelAction, FinishStatus, MultitaskStrategy

LEASE = 60
MAX_ATTEMPTS = 2
RUN_SHAPE = TypeAdapter(Run)
THREAD_SHAPE = TypeAdapter(Thread)


@dataclass
class ModelRun:
    run_id: str
    thread: str
    created_at: int
    updated_at: int
    status: str = "pending"
    attempt: int = 0
    lease_expires_at: int | None = None
    terminal_seen: str | None = None
    ended: int = 0  # the order in which runs ended, whatever the clock said
    queued: int = 0  # the order in which runs were created: the order claims take them in
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # what its stream must hold


def expect(error: type[Exception] | None, call: Callable[[], Any]) -> Any:
    """Call the store: it must succeed when `error` is None, else raise exactly `error`."""
    try:
        result = call()
    except ThreadStoreError as refusal:
        if error is None or type(refusal) is not error:
            raise AssertionError(f"the model expected {error.__name__ if error else 'success'}") from refusal
        return None
    assert error is None, f"the store accepted a call the model refuses ({error.__name__})"
    return result


def make_machine(open_store: Callable[[FakeClock], Store]) -> type[RuleBasedStateMachine]:
    """The state machine class, bound to a function that opens a fresh store for each example."""

    class LangGraphStoreMachine(RuleBasedStateMachine):
        thread_ids = Bundle("threads")
        run_ids = Bundle("runs")
        claims = Bundle("claims")

        def __init__(self) -> None:
            super().__init__()
            self.clock = FakeClock()
            self.store = open_store(self.clock)
            self.runs: dict[str, ModelRun] = {}
            self.threads: list[str] = []
            self.endings = itertools.count(1)
            self.creations = itertools.count(1)

        def teardown(self) -> None:
            self.store.close()

        @property
        def now(self) -> int:
            return unix_micros(self.clock.now)

        def expect(self, error: type[Exception] | None, call: Callable[[], Any]) -> Any:
            return expect(error, call)

        def move(self, run: ModelRun, target: str) -> None:
            assert RUN.allows(run.status, target)
            run.status, run.updated_at = target, self.now
            if target != "running":
                run.lease_expires_at = None
            if target in RUN.terminal:
                run.ended = next(self.endings)
                run.events.append(("end", {"run_id": run.run_id, "status": target}))
            if target == "running":  # a claim: the attempt it starts
                run.events.append(("metadata", {"run_id": run.run_id, "attempt": run.attempt}))

        def model_thread_status(self, thread: str) -> str:
            mine = [r for r in self.runs.values() if r.thread == thread]
            if any(r.status in BUSY_RUN_STATUSES for r in mine):
                return "busy"
            if not mine:
                return "idle"
            last = max(mine, key=lambda r: (r.ended, r.run_id))
            return THREAD_STATUS_AFTER_RUN[last.status]

        def fence(self, run_id: str, attempt: int) -> type[Exception] | None:
            """The error a fenced write (heartbeat, finish) with this claim must meet, if any."""
            run = self.runs.get(run_id)
            if run is None:
                return NotFoundError
            if run.attempt != attempt:
                return ConflictError
            return None if run.status == "running" else InvalidTransitionError

        @initialize(target=thread_ids)
        def first_thread(self) -> str:
            return str(self.create_thread())

        @rule(target=thread_ids)
        def create_thread(self) -> str:
            thread = self.store.langgraph.threads.create().thread_id
            self.threads.append(thread)
            return thread

        @rule(seconds=st.sampled_from([0, 1, 30, 61]))
        def advance_clock(self, seconds: int) -> None:
            self.clock.advance(seconds)

        @rule(target=run_ids, thread=thread_ids, strategy=st.sampled_from(MULTITASK_STRATEGIES))
        def create_run(self, thread: str, strategy: MultitaskStrategy) -> str:
            busy = [r for r in self.runs.values() if r.thread == thread and r.status in BUSY_RUN_STATUSES]
            refused = ConflictError if busy and strategy == "reject" else None
            create = lambda: self.store.langgraph.runs.create(thread, assistant_id="agent", multitask_strategy=strategy)  # noqa: E731
            run = self.expect(refused, create)
            if run is None:
                return "run-refused"
            if busy and strategy == "interrupt":
                for other in busy:
                    self.move(other, "interrupted")
            if busy and strategy == "rollback":
                for other in busy:
                    del self.runs[other.run_id]
            self.runs[run.run_id] = ModelRun(run.run_id, thread, self.now, self.now, queued=next(self.creations))
            return str(run.run_id)

        @rule(target=claims)
        def claim_next(self) -> tuple[str, int]:
            return self.claim_one()

        def claim_one(self) -> tuple[str, int]:
            """Claim the next run, in the store and the model; the claim, or ("no-claim", 0)."""
            running_threads = {r.thread for r in self.runs.values() if r.status == "running"}
            ready = [r for r in self.runs.values() if r.status == "pending" and r.thread not in running_threads]
            expected = min(ready, key=lambda r: r.queued) if ready else None
            claimed = self.store.langgraph.runs.claim_next(lease_seconds=LEASE)
            assert (claimed.run_id if claimed else None) == (expected.run_id if expected else None)
            if expected is None or claimed is None:
                return ("no-claim", 0)
            expected.attempt += 1
            self.move(expected, "running")
            expected.lease_expires_at = self.now + LEASE * 1_000_000
            assert claimed.attempt == expected.attempt
            return (claimed.run_id, claimed.attempt)

        @rule(claim=claims)
        def heartbeat(self, claim: tuple[str, int]) -> None:
            run_id, attempt = claim
            if attempt == 0:
                return
            refused = self.fence(run_id, attempt)
            beat = lambda: self.store.langgraph.runs.heartbeat(run_id, attempt=attempt, lease_seconds=LEASE)  # noqa: E731
            if self.expect(refused, beat) is not None:
                run = self.runs[run_id]
                run.lease_expires_at, run.updated_at = self.now + LEASE * 1_000_000, self.now

        @rule(claim=claims, status=st.sampled_from(FINISH_STATUSES))
        def finish(self, claim: tuple[str, int], status: FinishStatus) -> None:
            run_id, attempt = claim
            if attempt == 0:
                return
            refused = self.fence(run_id, attempt)
            end = lambda: self.store.langgraph.runs.finish(run_id, attempt=attempt, status=status)  # noqa: E731
            if self.expect(refused, end) is not None:
                self.move(self.runs[run_id], status)

        @rule(run_id=run_ids, status=st.sampled_from(FINISH_STATUSES))
        def finish_with_a_stale_attempt(self, run_id: str, status: FinishStatus) -> None:
            """A worker that lost its lease tries to finish: its successor's claim must stand."""
            run = self.runs.get(run_id)
            if run is None or run.attempt < 2:
                return
            stale = run.attempt - 1
            end = lambda: self.store.langgraph.runs.finish(run_id, attempt=stale, status=status)  # noqa: E731
            self.expect(ConflictError, end)

        @rule(status=st.sampled_from(FINISH_STATUSES))
        def a_worker_outlived_by_its_lease_finishes(self, status: FinishStatus) -> None:
            """The whole story in one step, so that every run of the test tells it: a worker's
            lease runs out, its run is claimed again, and the first worker finishes late."""
            running = [r for r in self.runs.values() if r.status == "running" and r.attempt < MAX_ATTEMPTS]
            run_id = running[0].run_id if running else self.claim_one()[0]
            run = self.runs.get(run_id)
            if run is None or run.attempt >= MAX_ATTEMPTS:
                return
            attempt = run.attempt
            self.leases_run_out()
            while self.claim_one()[0] not in (run_id, "no-claim"):
                pass  # runs ahead of it in the queue are claimed first
            end = lambda: self.store.langgraph.runs.finish(run_id, attempt=attempt, status=status)  # noqa: E731
            self.expect(ConflictError, end)

        @rule(run_id=run_ids, action=st.sampled_from(["interrupt", "rollback"]))
        def cancel(self, run_id: str, action: CancelAction) -> None:
            if run_id == "run-refused":
                return
            run = self.runs.get(run_id)
            refused = (
                NotFoundError if run is None else None if run.status in BUSY_RUN_STATUSES else InvalidTransitionError
            )
            if (
                self.expect(refused, lambda: self.store.langgraph.runs.cancel(run_id, action=action)) is None
                and refused
            ):
                return
            assert run is not None
            if action == "rollback":
                del self.runs[run_id]
            else:
                self.move(run, "interrupted")

        @rule()
        def leases_run_out(self) -> None:
            """Time passes beyond every lease, and the requeue job runs."""
            self.clock.advance(LEASE + 1)
            self.requeue_stale()

        @rule()
        def requeue_stale(self) -> None:
            stale = [r for r in self.runs.values() if r.status == "running" and (r.lease_expires_at or 0) <= self.now]
            moved = self.store.langgraph.runs.requeue_stale(max_attempts=MAX_ATTEMPTS)
            assert sorted(r.run_id for r in moved) == sorted(r.run_id for r in stale)
            for run in stale:
                self.move(run, "error" if run.attempt >= MAX_ATTEMPTS else "pending")

        @invariant()
        def store_agrees_with_the_model(self) -> None:
            with self.store.engine.connect() as connection:
                stored_runs = [LangGraphRun.from_row(r._mapping) for r in connection.execute(sa.select(runs))]
                stored_threads = [LangGraphThread.from_row(r._mapping) for r in connection.execute(sa.select(threads))]
            assert {r.run_id: (r.status, r.attempt) for r in stored_runs} == {
                i: (r.status, r.attempt) for i, r in self.runs.items()
            }
            for stored in stored_runs:
                model = self.runs[stored.run_id]
                assert (stored.updated_at, stored.lease_expires_at) == (model.updated_at, model.lease_expires_at)
                if model.terminal_seen is not None:
                    assert stored.status == model.terminal_seen
                if stored.status in RUN.terminal:
                    model.terminal_seen = stored.status
                RUN_SHAPE.validate_python(stored.to_api())
            for thread in stored_threads:
                assert thread.status == self.model_thread_status(thread.thread_id), thread.thread_id
                THREAD_SHAPE.validate_python(thread.to_api())

        @invariant()
        def each_run_streamed_each_claim_and_its_end_in_order(self) -> None:
            streamed: dict[str | None, list[tuple[str, dict[str, Any]]]] = {}
            for event in self.store.events.list(limit=1000):  # every thread's, in commit order
                streamed.setdefault(event.run_id, []).append((event.event, event.data))
            assert streamed == {run_id: run.events for run_id, run in self.runs.items() if run.events}

        @invariant()
        def the_store_has_at_most_one_running_run_per_thread(self) -> None:
            with self.store.engine.connect() as connection:
                query = sa.select(runs.c.thread_id).where(runs.c.status == "running")
                running = list(connection.execute(query).scalars())
            assert len(running) == len(set(running))

    return LangGraphStoreMachine
