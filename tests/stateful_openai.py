"""A hypothesis state machine that drives the real store and a plain in-memory model of runs,
run steps and messages side by side, and checks after every step that they agree.

The model takes the legal moves, the timestamps each status stamps and the cascade from the
tables in threadstore.openai.states (the one place they are written down). Bugs planted in the
store's code (tests/test_stateful_openai.py) are caught because the model keeps the tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule
from openai.types.beta.threads import Message as ApiMessage
from openai.types.beta.threads import Run as ApiRun
from openai.types.beta.threads.runs import RunStep as ApiRunStep

from tests.conftest import FakeClock
from threadstore import (
    ConflictError,
    InvalidTransitionError,
    Message,
    Run,
    RunStep,
    Store,
    ThreadStoreError,
    ValidationError,
)
from threadstore.lifecycle import Machine
from threadstore.openai.models import messages, runs
from threadstore.openai.queries import STEP_QUERY
from threadstore.openai.states import (
    MESSAGE,
    MESSAGE_END_WHEN_RUN_ENDS,
    MESSAGE_INCOMPLETE_REASONS,
    RUN,
    RUN_STEP,
    STEP_STATUS_WHEN_RUN_ENDS,
)
from threadstore.types import MessageIncompleteReason, NewMessageStatus

USAGE = {"prompt_tokens": 2, "completion_tokens": 3}
WORKING = ("in_progress", "cancelling")  # the statuses in which a worker holds a run


@dataclass
class Tracked:
    """What the model knows of one object: its status, its timestamps and its other fields."""

    id: str
    created_at: int
    status: str
    stamps: dict[str, int | None]
    parent: str = ""  # a step's or message's run
    thread: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    terminal_seen: str | None = None
    history: list[str] = field(default_factory=list)  # every status it has been in, in order

    def __post_init__(self) -> None:
        self.history = [self.status]


def enter(obj: Tracked, machine: Machine, target: str, now: int) -> None:
    """Apply `machine`'s bookkeeping for entering `target` at `now` to the model object."""
    obj.status = target
    obj.history.append(target)
    stamp = machine.stamps.get(target)
    if stamp is not None and not (stamp in machine.keep_first and obj.stamps.get(stamp) is not None):
        obj.stamps[stamp] = now
    for column in machine.clears(target):
        if column in obj.stamps:
            obj.stamps[column] = None
        obj.extra.pop(column, None)


def make_machine(open_store: Callable[[FakeClock], Store]) -> type[RuleBasedStateMachine]:
    """The state machine class, bound to a function that opens a fresh store for each example."""

    class OpenAIStoreMachine(RuleBasedStateMachine):
        threads = Bundle("threads")
        run_ids = Bundle("runs")
        step_ids = Bundle("steps")
        message_ids = Bundle("messages")

        def __init__(self) -> None:
            super().__init__()
            self.clock = FakeClock()
            self.store = open_store(self.clock)
            self.assistant = self.store.assistants.create(model="gpt-4o").id
            self.runs: dict[str, Tracked] = {}
            self.steps: dict[str, Tracked] = {}
            self.messages: dict[str, Tracked] = {}

        def teardown(self) -> None:
            self.store.close()

        # --- helpers -------------------------------------------------------------------

        @property
        def now(self) -> int:
            return self.clock.seconds

        def active_run(self, thread: str) -> Tracked | None:
            found = [r for r in self.runs.values() if r.thread == thread and r.status in RUN.active]
            assert len(found) <= 1
            return found[0] if found else None

        @property
        def now_micros(self) -> int:
            return self.clock.seconds * 1_000_000

        def move_run(self, run: Tracked, target: str) -> None:
            enter(run, RUN, target, self.now)
            if target in RUN.terminal:
                self.end_children(run, target)

        def end_children(self, run: Tracked, as_status: str) -> None:
            """The cascade of a run ending in `as_status` (or of an attempt taken back, as failed)."""
            for step in self.steps.values():
                if step.parent == run.id and step.status == RUN_STEP.initial:
                    enter(step, RUN_STEP, STEP_STATUS_WHEN_RUN_ENDS[as_status], self.now)
                    step.extra["error"] = as_status == "failed"
            for message in self.messages.values():
                if message.parent == run.id and message.status == MESSAGE.initial:
                    status, reason = MESSAGE_END_WHEN_RUN_ENDS[as_status]
                    enter(message, MESSAGE, status, self.now)
                    message.extra["reason"] = reason

        def holder(self, run_id: str, call_ids: set[str]) -> Tracked | None:
            """The newest in-progress tool_calls step of the run that holds all of `call_ids`."""
            holding = [
                s
                for s in self.steps.values()
                if s.parent == run_id
                and s.status == "in_progress"
                and s.extra["type"] == "tool_calls"
                and call_ids <= s.extra["calls"]
            ]
            return max(holding, key=lambda s: (s.created_at, s.id)) if holding else None

        def expect(self, legal: bool, error: type[Exception], call: Callable[[], Any]) -> Any:
            """Call the store; it must succeed if the model says the call is legal, else raise `error`."""
            try:
                result = call()
            except ThreadStoreError as refusal:
                if legal or type(refusal) is not error:
                    raise AssertionError(f"the model expected {'success' if legal else error.__name__}") from refusal
                return None
            assert legal, f"the store accepted a call the model refuses (expected {error.__name__})"
            return result

        # --- rules -----------------------------------------------------------------------

        @initialize(target=threads)
        def first_thread(self) -> str:
            return self.store.threads.create().id

        @rule(target=threads)
        def create_thread(self) -> str:
            return self.store.threads.create().id

        @rule(seconds=st.sampled_from([0, 1, 5, 60, 700]))
        def advance_clock(self, seconds: int) -> None:
            self.clock.advance(seconds)

        @rule(target=run_ids, thread=threads, expires_in=st.sampled_from([30, 600]))
        def create_run(self, thread: str, expires_in: int) -> str:
            legal = self.active_run(thread) is None
            create = lambda: self.store.runs.create(thread, assistant_id=self.assistant, expires_in=expires_in)  # noqa: E731
            run = self.expect(legal, ConflictError, create)
            if run is None:
                return "run_refused"
            stamps = {
                "expires_at": self.now + expires_in,
                "started_at": None,
                "cancelled_at": None,
                "failed_at": None,
                "completed_at": None,
            }
            self.runs[run.id] = Tracked(run.id, self.now, RUN.initial, stamps, thread=thread)
            return str(run.id)

        @rule(run_id=run_ids)
        def start(self, run_id: str) -> None:
            self.run_verb(run_id, "start")

        @rule(run_id=run_ids)
        def cancel(self, run_id: str) -> None:
            self.run_verb(run_id, "cancel")

        @rule(run_id=run_ids)
        def mark_cancelled(self, run_id: str) -> None:
            self.run_verb(run_id, "mark_cancelled")

        @rule(run_id=run_ids)
        def complete(self, run_id: str) -> None:
            self.run_verb(run_id, "complete")

        @rule(run_id=run_ids)
        def fail(self, run_id: str) -> None:
            self.run_verb(run_id, "fail")

        @rule(run_id=run_ids)
        def mark_incomplete(self, run_id: str) -> None:
            self.run_verb(run_id, "mark_incomplete")

        @rule(run_id=run_ids)
        def expire(self, run_id: str) -> None:
            self.run_verb(run_id, "expire")

        def run_verb(self, run_id: str, verb: str) -> None:
            run = self.runs.get(run_id)
            if run is None:
                return
            status = run.status
            targets = {
                "start": "in_progress" if status == "queued" else None,
                "cancel": "cancelling"
                if status == "in_progress"
                else "cancelled"
                if status in ("queued", "requires_action")
                else None,
                "mark_cancelled": "cancelled" if status == "cancelling" else None,
                "complete": "completed" if RUN.allows(status, "completed") else None,
                "fail": "failed" if RUN.allows(status, "failed") else None,
                "mark_incomplete": "incomplete" if RUN.allows(status, "incomplete") else None,
                "expire": "expired" if RUN.allows(status, "expired") else None,
            }
            calls: dict[str, Callable[[], Run]] = {
                "start": lambda: self.store.runs.start(run_id),
                "cancel": lambda: self.store.runs.cancel(run_id),
                "mark_cancelled": lambda: self.store.runs.mark_cancelled(run_id),
                "complete": lambda: self.store.runs.complete(run_id, usage=USAGE),
                "fail": lambda: self.store.runs.fail(run_id, code="server_error", message="down"),
                "mark_incomplete": lambda: self.store.runs.mark_incomplete(run_id, reason="max_prompt_tokens"),
                "expire": lambda: self.store.runs.expire(run_id),
            }
            target = targets[verb]
            if self.expect(target is not None, InvalidTransitionError, calls[verb]) is not None:
                assert target is not None
                self.move_run(run, target)
                run.extra["usage"] = verb == "complete"

        @rule(run_id=run_ids, count=st.integers(1, 2))
        def require_action(self, run_id: str, count: int) -> None:
            run = self.runs.get(run_id)
            if run is None:
                return
            calls: list[dict[str, Any]] = [
                {"id": f"call_{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                for i in range(count)
            ]
            legal = run.status == "in_progress"
            held = self.holder(run_id, {c["id"] for c in calls})
            if self.expect(
                legal, InvalidTransitionError, lambda: self.store.runs.require_action(run_id, tool_calls=calls)
            ):
                self.move_run(run, "requires_action")
                run.extra["required_action"] = [c["id"] for c in calls]
                stored = {s.id for s in self.store.run_steps.list(run_id, limit=100)}
                new = stored - set(self.steps)
                assert len(new) == (0 if held is not None else 1)
                for step_id in new:
                    self.steps[step_id] = Tracked(
                        step_id,
                        self.now,
                        "in_progress",
                        _step_stamps(),
                        parent=run_id,
                        thread=run.thread,
                        extra={"type": "tool_calls", "calls": {c["id"] for c in calls}},
                    )

        @rule(run_id=run_ids, correct=st.booleans())
        def submit_tool_outputs(self, run_id: str, correct: bool) -> None:
            run = self.runs.get(run_id)
            if run is None:
                return
            asked = run.extra.get("required_action", []) if run.status == "requires_action" else []
            answered = asked if correct else [*asked, "call_unasked"]
            outputs = [{"tool_call_id": call_id, "output": "ok"} for call_id in answered]
            submit = lambda: self.store.runs.submit_tool_outputs(run_id, tool_outputs=outputs)  # noqa: E731
            if run.status != "requires_action":
                self.expect(False, InvalidTransitionError, submit)
            elif not correct:
                self.expect(False, ValidationError, submit)
            elif (step := self.holder(run_id, set(asked))) is None:
                self.expect(False, ConflictError, submit)  # the calls' step has ended: refused, never dropped
            else:
                self.expect(True, ConflictError, submit)
                enter(step, RUN_STEP, "completed", self.now)
                self.move_run(run, "queued")

        @rule(lease=st.sampled_from([None, 1, 30]))
        def claim_next(self, lease: int | None) -> None:
            queued = [
                r for r in self.runs.values() if r.status == "queued" and (r.stamps["expires_at"] or 0) > self.now
            ]
            expected = min(queued, key=lambda r: (r.created_at, r.id)) if queued else None
            claimed = self.store.runs.claim_next(lease_seconds=lease)
            assert (claimed.id if claimed else None) == (expected.id if expected else None)
            if expected is not None:
                self.move_run(expected, "in_progress")
                expected.extra["attempt"] = expected.extra.get("attempt", 0) + 1
                expected.extra["lease_expires_at"] = None if lease is None else self.now_micros + lease * 1_000_000

        @rule(run_id=run_ids, lease=st.sampled_from([1, 30]))
        def heartbeat(self, run_id: str, lease: int) -> None:
            run = self.runs.get(run_id)
            if run is None:
                return
            beat = lambda: self.store.runs.heartbeat(run_id, attempt=run.extra.get("attempt", 0), lease_seconds=lease)  # noqa: E731
            if self.expect(run.status in WORKING, InvalidTransitionError, beat) is not None:
                run.extra["lease_expires_at"] = self.now_micros + lease * 1_000_000

        @rule(run_id=run_ids, verb=st.sampled_from(["start", "heartbeat", "complete", "fail", "mark_cancelled"]))
        def stale_worker_writes(self, run_id: str, verb: str) -> None:
            run = self.runs.get(run_id)
            if run is None or run.extra.get("attempt", 0) == 0:
                return
            stale = run.extra["attempt"] - 1
            calls: dict[str, Callable[[], Run]] = {
                "start": lambda: self.store.runs.start(run_id, attempt=stale),
                "heartbeat": lambda: self.store.runs.heartbeat(run_id, attempt=stale),
                "complete": lambda: self.store.runs.complete(run_id, attempt=stale),
                "fail": lambda: self.store.runs.fail(run_id, code="server_error", message="late", attempt=stale),
                "mark_cancelled": lambda: self.store.runs.mark_cancelled(run_id, attempt=stale),
            }
            self.expect(False, ConflictError, calls[verb])

        def stale_runs(self) -> list[Tracked]:
            return [
                run
                for run in self.runs.values()
                if run.status in WORKING
                and (run.extra.get("lease_expires_at") or self.now_micros + 1) <= self.now_micros
            ]

        # Only when a lease has expired (else the call is a no-op the other rules cover), so that
        # the runs a requeue takes back are reached often.
        @precondition(lambda self: bool(self.stale_runs()))
        @rule(max_attempts=st.integers(1, 3))
        def requeue_stale(self, max_attempts: int) -> None:
            expected = {}
            for run in self.stale_runs():
                out_of_attempts = run.extra.get("attempt", 0) >= max_attempts  # 0: started without a claim
                expected[run.id] = (
                    "cancelled" if run.status == "cancelling" else "failed" if out_of_attempts else "queued"
                )
            moved = {r.id: r.status for r in self.store.runs.requeue_stale(max_attempts=max_attempts)}
            assert moved == expected
            for run_id, target in expected.items():
                run = self.runs[run_id]
                if target == "queued":
                    self.end_children(run, "failed")  # the attempt taken back ends as a failed run's
                self.move_run(run, target)

        @rule()
        def expire_overdue(self) -> None:
            overdue = {
                r.id for r in self.runs.values() if r.status in RUN.active and (r.stamps["expires_at"] or 0) <= self.now
            }
            assert {r.id for r in self.store.runs.expire_overdue()} == overdue
            for run_id in overdue:
                self.move_run(self.runs[run_id], "expired")

        @rule(target=message_ids, thread=threads, by_run=st.booleans())
        def create_message(self, thread: str, by_run: bool) -> str:
            active = self.active_run(thread)
            run_id = active.id if by_run and active is not None else None
            status: NewMessageStatus = "in_progress" if run_id else "completed"
            create = lambda: self.store.messages.create(  # noqa: E731
                thread, role="assistant" if run_id else "user", content="m", run_id=run_id, status=status
            )
            message = self.expect(active is None or run_id is not None, ConflictError, create)
            if message is None:
                return "msg_refused"
            stamps = {"completed_at": self.now if status == "completed" else None, "incomplete_at": None}
            self.messages[message.id] = Tracked(
                message.id, self.now, status, stamps, parent=run_id or "", thread=thread, extra={"reason": None}
            )
            return str(message.id)

        @rule(message_id=message_ids, reason=st.none() | st.sampled_from(MESSAGE_INCOMPLETE_REASONS))
        def end_message(self, message_id: str, reason: MessageIncompleteReason | None) -> None:
            message = self.messages.get(message_id)
            if message is None:
                return
            target = "completed" if reason is None else "incomplete"
            end = (
                (lambda: self.store.messages.complete(message_id))
                if reason is None
                else (lambda: self.store.messages.mark_incomplete(message_id, reason=reason))
            )
            if self.expect(MESSAGE.allows(message.status, target), InvalidTransitionError, end):
                enter(message, MESSAGE, target, self.now)
                message.extra["reason"] = reason

        @rule(target=step_ids, run_id=run_ids, kind=st.sampled_from(["tool_calls", "message_creation"]))
        def create_step(self, run_id: str, kind: str) -> str:
            run = self.runs.get(run_id)
            if run is None:
                return "step_refused"
            in_thread = [m.id for m in self.messages.values() if m.thread == run.thread]
            if kind == "message_creation" and not in_thread:
                kind = "tool_calls"
            details = (
                {"type": "tool_calls", "tool_calls": []}
                if kind == "tool_calls"
                else {"type": "message_creation", "message_creation": {"message_id": in_thread[-1]}}
            )
            create = lambda: self.store.run_steps.create(run_id, step_details=details)  # noqa: E731
            step = self.expect(run.status == "in_progress", ConflictError, create)
            if step is None:
                return "step_refused"
            self.steps[step.id] = Tracked(
                step.id,
                self.now,
                "in_progress",
                _step_stamps(),
                parent=run_id,
                thread=run.thread,
                extra={"type": kind, "calls": set(), "details": details},
            )
            return str(step.id)

        @rule(step_id=step_ids)
        def update_details(self, step_id: str) -> None:
            step = self.steps.get(step_id)
            if step is None:
                return
            details = step.extra.get("details") or {"type": "tool_calls", "tool_calls": []}
            update = lambda: self.store.run_steps.update_details(step_id, step_details=details)  # noqa: E731
            if self.expect(step.status == "in_progress", ConflictError, update) is not None:
                step.extra["calls"] = set()  # the calls are replaced by the details sent

        @rule(message_id=message_ids)
        def update_content(self, message_id: str) -> None:
            message = self.messages.get(message_id)
            if message is None:
                return
            update = lambda: self.store.messages.update_content(message_id, content="more")  # noqa: E731
            self.expect(message.status == "in_progress", ConflictError, update)

        @rule(step_id=step_ids, verb=st.sampled_from(["complete", "fail", "cancel", "expire"]))
        def step_verb(self, step_id: str, verb: str) -> None:
            step = self.steps.get(step_id)
            if step is None:
                return
            target = {"complete": "completed", "fail": "failed", "cancel": "cancelled", "expire": "expired"}[verb]
            call = {
                "complete": lambda: self.store.run_steps.complete(step_id, usage=USAGE),
                "fail": lambda: self.store.run_steps.fail(step_id, code="server_error", message="x"),
                "cancel": lambda: self.store.run_steps.cancel(step_id),
                "expire": lambda: self.store.run_steps.expire(step_id),
            }[verb]
            if self.expect(RUN_STEP.allows(step.status, target), InvalidTransitionError, call):
                enter(step, RUN_STEP, target, self.now)
                step.extra["error"] = verb == "fail"

        # --- invariants ------------------------------------------------------------------

        def stored(self) -> tuple[list[Run], list[RunStep], list[Message]]:
            with self.store.engine.connect() as connection:
                return (
                    [Run.from_row(r._mapping) for r in connection.execute(sa.select(runs))],
                    [RunStep.from_row(r._mapping) for r in connection.execute(STEP_QUERY)],
                    [Message.from_row(r._mapping) for r in connection.execute(sa.select(messages))],
                )

        @invariant()
        def store_agrees_with_the_model(self) -> None:
            stored_runs, stored_steps, stored_messages = self.stored()
            assert {r.id: r.status for r in stored_runs} == {i: r.status for i, r in self.runs.items()}
            assert {s.id: s.status for s in stored_steps} == {i: s.status for i, s in self.steps.items()}
            assert {m.id: m.status for m in stored_messages} == {i: m.status for i, m in self.messages.items()}
            for run in stored_runs:
                self.check_run(run, self.runs[run.id])
            for step in stored_steps:
                self.check_timestamps(step, self.steps[step.id])
                tracked = self.steps[step.id]
                assert (step.last_error is not None) == (step.status == "failed" and tracked.extra.get("error", False))
                assert step.usage is None or step.status != "in_progress"
                ApiRunStep.model_validate(step.to_api())
            for message in stored_messages:
                self.check_timestamps(message, self.messages[message.id])
                assert message.incomplete_reason == self.messages[message.id].extra["reason"]
                ApiMessage.model_validate(message.to_api())

        def check_timestamps(self, obj: Any, tracked: Tracked) -> None:
            assert obj.created_at == tracked.created_at
            for column, expected in tracked.stamps.items():
                assert getattr(obj, column) == expected, f"{obj.id} {column}"
                if expected is not None and column != "expires_at":
                    assert expected >= obj.created_at
            if tracked.terminal_seen is not None:
                assert obj.status == tracked.terminal_seen, f"{obj.id} left terminal {tracked.terminal_seen}"
            machine = {"run": RUN, "step": RUN_STEP, "msg": MESSAGE}[obj.id.split("_")[0]]
            if obj.status in machine.terminal:
                tracked.terminal_seen = obj.status

        def check_run(self, run: Run, tracked: Tracked) -> None:
            self.check_timestamps(run, tracked)
            asked = run.required_action and [c["id"] for c in run.required_action["submit_tool_outputs"]["tool_calls"]]
            assert (asked or None) == (
                tracked.extra.get("required_action") if run.status == "requires_action" else None
            )
            assert (run.last_error is not None) == (run.status == "failed")
            assert (run.incomplete_details is not None) == (run.status == "incomplete")
            assert (run.usage is not None) == (run.status == "completed" and tracked.extra.get("usage", False))
            assert (run.attempt, run.lease_expires_at) == (
                tracked.extra.get("attempt", 0),
                tracked.extra.get("lease_expires_at"),
            )
            ApiRun.model_validate(run.to_api())

        @invariant()
        def each_object_streamed_an_event_for_its_creation_and_each_status_it_entered(self) -> None:
            streamed: dict[str, list[str]] = {}
            for event in self.store.events.list(limit=1000):
                if not event.event.endswith(".delta") and event.event != "thread.created":
                    streamed.setdefault(event.data["id"], []).append(event.event)
            expected = {}
            for prefix, objects in (("thread.run", self.runs), ("thread.run.step", self.steps)):
                for obj in objects.values():
                    expected[obj.id] = [f"{prefix}.created", *(f"{prefix}.{status}" for status in obj.history)]
            for message in self.messages.values():
                announced = message.history if message.history[0] == "in_progress" else message.history[1:]
                expected[message.id] = ["thread.message.created", *(f"thread.message.{s}" for s in announced)]
            assert streamed == expected

        @invariant()
        def fields_are_set_only_where_their_status_allows(self) -> None:
            with self.store.engine.connect() as connection:
                for table, machine in ((runs, RUN), (messages, MESSAGE)):
                    for row in connection.execute(sa.select(table)).mappings():
                        for column, rule in machine.fields.items():
                            if row[column] is not None:
                                assert row["status"] in rule.statuses, f"{row['id']} {column} in {row['status']}"
                            elif rule.required:
                                assert row["status"] not in rule.statuses, f"{row['id']} lacks {column}"

        @invariant()
        def the_store_has_at_most_one_active_run_per_thread(self) -> None:
            with self.store.engine.connect() as connection:
                query = sa.select(runs.c.thread_id).where(runs.c.status.in_(RUN.active))
                active = list(connection.execute(query).scalars())
            assert len(active) == len(set(active))

    return OpenAIStoreMachine


def _step_stamps() -> dict[str, int | None]:
    return {column: None for column in RUN_STEP.stamps.values()}
