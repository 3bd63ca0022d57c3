"""How LangGraph runs stream. The worker appends the stream modes' events (`runs.append_event`:
values, updates, messages, custom, ...); the store itself writes `metadata` when a run starts
(a claim) and `end` when it ends, as the LangGraph API streams them."""

from __future__ import annotations

from dataclasses import dataclass

from threadstore.events.log import ApiObject, Row, register
from threadstore.fastsql import Raw
from threadstore.langgraph.models import runs
from threadstore.langgraph.states import RUN
from threadstore.records import Json

# Written by the store, never by a worker's append_event.
RESERVED = frozenset({"metadata", "end"})


@dataclass(frozen=True)
class RunStream:
    """The events the store writes for a LangGraph run's moves."""

    thread: str = "thread_id"
    run: str | None = "run_id"
    unit: int = 1_000_000  # LangGraph times are Unix microseconds

    def on_create(self, raw: Raw, row: Row, built: ApiObject | None) -> list[tuple[str, Json]]:
        return []

    def on_move(self, raw: Raw, row: Row, built: ApiObject | None) -> list[tuple[str, Json]]:
        if row["status"] == "running":
            return [("metadata", {"run_id": row["run_id"], "attempt": row["attempt"]})]
        if row["status"] in RUN.terminal:
            return [("end", {"run_id": row["run_id"], "status": row["status"]})]
        return []  # back to pending, for a retry: its next claim writes metadata again


register(runs, RunStream())
