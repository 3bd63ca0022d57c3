"""How the OpenAI objects stream: the API's event names and each event's data, the object's
`to_api()` at that moment (events.log writes them, called by transitions.py): each stream builds
the object from its row, unless the writer has built it already."""

from __future__ import annotations

from threadstore.events.log import Named, Row, register
from threadstore.fastsql import Raw
from threadstore.openai.api import Message, Run, RunStep, Thread
from threadstore.openai.models import messages, run_steps, runs, threads
from threadstore.openai.queries import step_row
from threadstore.records import Json


def _thread(raw: Raw, row: Row) -> Thread:
    return Thread.from_row(row)


def _run(raw: Raw, row: Row) -> Run:
    return Run.from_row(row)


def _message(raw: Raw, row: Row) -> Message:
    return Message.from_row(row)


def _step(raw: Raw, row: Row) -> RunStep:
    # With its details, error and usage: a step's writers pass its joined row (queries.step_row)
    # where they hold it; the rows of a bulk move are read again.
    return RunStep.from_row(row if "tool_calls" in row else step_row(raw, row["id"]))


register(threads, Named("thread", _thread, thread="id", statuses=False))
register(runs, Named("thread.run", _run, thread="thread_id", run="id", announced=frozenset({"queued"})))
register(
    messages,
    Named("thread.message", _message, thread="thread_id", run="run_id", announced=frozenset({"in_progress"})),
)
register(
    run_steps,
    Named("thread.run.step", _step, thread="thread_id", run="run_id", announced=frozenset({"in_progress"})),
)


def message_delta(message_id: str, index: int, text: str) -> Json:
    """The data of `thread.message.delta`: `text` appended to the content part at `index`."""
    part = {"index": index, "type": "text", "text": {"value": text, "annotations": []}}
    return {"id": message_id, "object": "thread.message.delta", "delta": {"content": [part]}}


def step_delta(step_id: str, details: Json) -> Json:
    """The data of `thread.run.step.delta`: a step's new details, each tool call with its index."""
    if details["type"] == "tool_calls":
        calls = [{"index": index, **call} for index, call in enumerate(details["tool_calls"])]
        details = {"type": "tool_calls", "tool_calls": calls}
    return {"id": step_id, "object": "thread.run.step.delta", "delta": {"step_details": details}}
