"""The LangGraph repositories of one scope: `store.langgraph.threads` and `store.langgraph.runs`."""

from __future__ import annotations

from threadstore.langgraph.runs import LangGraphRuns
from threadstore.langgraph.threads import LangGraphThreads
from threadstore.scope import Scope


class LangGraph:
    """The LangGraph Platform family."""

    def __init__(self, scope: Scope) -> None:
        self.threads = LangGraphThreads(scope)
        self.runs = LangGraphRuns(scope)
