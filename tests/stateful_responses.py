"""A hypothesis state machine that drives the responses repository and a plain model side by
side: background and direct responses on a few conversations (or none), claims, starts, output
items, streamed text, and every end, with the checks after each step: statuses, output item
statuses, what each conversation holds, one response in progress per conversation, and each
response's stream numbered 0, 1, 2, … with its terminal event last."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from tests.conftest import FakeClock
from tests.stateful_langgraph import expect
from threadstore import ConflictError, InvalidTransitionError, Store, ValidationError
from threadstore.responses.states import ITEM_STATUS_WHEN_RESPONSE_ENDS, RESPONSE

CONVERSATIONS = 2
ENDS = {
    "complete": "completed",
    "fail": "failed",
    "mark_incomplete": "incomplete",
    "cancel": "cancelled",
}


@dataclass
class ModelResponse:
    id: str
    background: bool
    conversation: str | None
    status: str
    output: dict[str, str] = field(default_factory=dict)  # item id → status, in order


def make_machine(open_store: Callable[[FakeClock], Store]) -> type[RuleBasedStateMachine]:
    """The state machine class, bound to a function that opens a fresh store for each example."""

    class ResponseStoreMachine(RuleBasedStateMachine):
        response_ids = Bundle("responses")
        item_ids = Bundle("items")

        def __init__(self) -> None:
            super().__init__()
            self.clock = FakeClock()
            self.store = open_store(self.clock)
            self.responses: dict[str, ModelResponse] = {}
            self.order: list[str] = []  # creation order
            self.conversations: dict[str, int] = {}  # id → how many items it holds
            self.items: dict[str, str] = {}  # output item id → its response

        def teardown(self) -> None:
            self.store.close()

        def busy(self, conversation: str | None) -> bool:
            return conversation is not None and any(
                r.conversation == conversation and r.status == "in_progress" for r in self.responses.values()
            )

        @initialize()
        def open_conversations(self) -> None:
            for _ in range(CONVERSATIONS):
                self.conversations[self.store.conversations.create(items=[{"role": "user", "content": "hi"}]).id] = 1

        @rule(target=response_ids, background=st.booleans(), which=st.integers(-1, CONVERSATIONS - 1))
        def create(self, background: bool, which: int) -> str:
            conversation = None if which < 0 else list(self.conversations)[which]
            error = ConflictError if not background and self.busy(conversation) else None
            created = expect(
                error,
                lambda: self.store.responses.create(
                    model="gpt-4o", input="q", background=background, conversation=conversation
                ),
            )
            if created is None:
                return "resp_refused"
            status = "queued" if background else "in_progress"
            self.responses[created.id] = ModelResponse(created.id, background, conversation, status)
            self.order.append(created.id)
            return str(created.id)

        @rule()
        def claim_next(self) -> None:
            waiting = [
                r
                for r in (self.responses[i] for i in self.order)
                if r.status == "queued" and not self.busy(r.conversation)
            ]
            claimed = self.store.responses.claim_next()
            if not waiting:
                assert claimed is None
                return
            assert claimed is not None and claimed.id == waiting[0].id
            waiting[0].status = "in_progress"

        @rule(response=response_ids)
        def start(self, response: str) -> None:
            model = self.responses.get(response)
            if model is None:
                return
            error: type[Exception] | None = None
            if model.status != "queued":
                error = InvalidTransitionError
            elif self.busy(model.conversation):
                error = ConflictError
            if expect(error, lambda: self.store.responses.start(response)) is not None:
                model.status = "in_progress"

        @rule(target=item_ids, response=response_ids, done=st.booleans())
        def add_output_item(self, response: str, done: bool) -> str:
            model = self.responses.get(response)
            if model is None:
                return "msg_refused"
            item = {"type": "message", "role": "assistant", "content": []}
            if done:
                item["status"] = "completed"
            error = None if model.status == "in_progress" else ConflictError
            added = expect(error, lambda: self.store.responses.add_output_item(response, item=item))
            if added is None:
                return "msg_refused"
            model.output[added.id] = "completed" if done else "in_progress"
            self.items[added.id] = response
            return str(added.id)

        @rule(item=item_ids, text=st.sampled_from(["a", "bc", ""]))
        def append_text(self, item: str, text: str) -> None:
            response = self.items.get(item)
            if response is None:
                return
            model = self.responses[response]
            open_message = model.status == "in_progress" and model.output[item] == "in_progress"
            error = None if open_message else ConflictError
            expect(error, lambda: self.store.responses.append_text(response, item_id=item, text=text))

        @rule(response=response_ids, verb=st.sampled_from(sorted(ENDS)))
        def end(self, response: str, verb: str) -> None:
            model = self.responses.get(response)
            if model is None:
                return
            target = ENDS[verb]
            calls = {
                "complete": lambda: self.store.responses.complete(response),
                "fail": lambda: self.store.responses.fail(response, code="server_error", message="x"),
                "mark_incomplete": lambda: self.store.responses.mark_incomplete(response, reason="content_filter"),
                "cancel": lambda: self.store.responses.cancel(response),
            }
            error: type[Exception] | None = None
            if verb == "cancel" and not model.background:
                error = ValidationError
            elif model.status not in RESPONSE.verb_sources(verb, target):
                error = InvalidTransitionError
            if expect(error, calls[verb]) is None:
                return
            model.status = target
            for item, status in model.output.items():
                if status == "in_progress":
                    model.output[item] = ITEM_STATUS_WHEN_RESPONSE_ENDS[target]
            if target == "completed" and model.conversation is not None:
                self.conversations[model.conversation] += 1 + len(model.output)

        @invariant()
        def statuses_and_output_agree(self) -> None:
            for model in self.responses.values():
                stored = self.store.responses.get(model.id)
                assert stored.status == model.status
                assert {item.id: item.status for item in stored.output} == model.output

        @invariant()
        def conversations_hold_what_the_model_says(self) -> None:
            for conversation, count in self.conversations.items():
                page = self.store.conversations.items.list(conversation, limit=100)
                assert len(page) == count

        @invariant()
        def each_stream_is_numbered_and_ends_with_its_end(self) -> None:
            for model in self.responses.values():
                events = self.store.events.list(run_id=model.id, limit=1000)
                assert [event.data["sequence_number"] for event in events] == list(range(len(events)))
                if model.status in RESPONSE.terminal:
                    assert events[-1].event == f"response.{model.status}"

    return ResponseStoreMachine
