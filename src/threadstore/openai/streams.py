"""How the OpenAI objects stream: the API's event names and each event's data, the object's
`to_api()` at that moment (events.log writes them, called by transitions.py)."""

from __future__ import annotations

from threadstore.events.log import Row, Stream, register
from threadstore.fastsql import Raw
from threadstore.openai.api import Message, Run, Thread
from threadstore.openai.models import messages, run_steps, runs, threads
from threadstore.openai.queries import load_step
from threadstore.records import Json


def _thread(raw: Raw, row: Row) -> Json:
    return Thread.from_row(row).to_api()


def _run(raw: Raw, row: Row) -> Json:
    return Run.from_row(row).to_api()


def _message(raw: Raw, row: Row) -> Json:
    return Message.from_row(row).to_api()


def _step(raw: Raw, row: Row) -> Json:
    return load_step(raw, row["id"]).to_api()  # with its details, error and usage


register(threads, Stream("thread", _thread, thread="id", statuses=False))
register(runs, Stream("thread.run", _run, thread="thread_id", run="id", announced=frozenset({"queued"})))
register(
    messages,
    Stream("thread.message", _message, thread="thread_id", run="run_id", announced=frozenset({"in_progress"})),
)
register(
    run_steps,
    Stream("thread.run.step", _step, thread="thread_id", run="run_id", announced=frozenset({"in_progress"})),
)
