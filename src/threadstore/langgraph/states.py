"""The LangGraph run lifecycle and thread statuses, as data (README.md, "Lifecycles")."""

from __future__ import annotations

from threadstore.lifecycle import FieldRule, Machine

RUN = Machine(
    kind="langgraph run",
    initial="pending",
    transitions={
        "pending": frozenset({"running", "interrupted"}),
        # running → pending is a retry: the lease expired and the run waits for another worker.
        "running": frozenset({"success", "error", "timeout", "interrupted", "pending"}),
    },
    fields={"lease_expires_at": FieldRule(frozenset({"running"}), required=True)},
    verbs={
        "claim_next": {"running": frozenset({"pending"})},
        "finish": {status: frozenset({"running"}) for status in ("success", "error", "timeout", "interrupted")},
        "cancel": {"interrupted": frozenset({"pending", "running"})},
        # multitask_strategy="interrupt": a new run interrupts the thread's pending and running ones.
        "interrupt": {"interrupted": frozenset({"pending", "running"})},
        # A lease expired: the run waits for another worker, or ends after its last attempt.
        "requeue_stale": {"pending": frozenset({"running"}), "error": frozenset({"running"})},
    },
    touches=("updated_at",),
    # claim_next takes pending runs in the order they were created, and a thread's status follows
    # the run that ended last: both by `seq`, which the database numbers, not by the clock.
    ordered="seq",
)

THREAD_STATUSES = ("idle", "busy", "interrupted", "error")
THREAD_INITIAL_STATUS = "idle"
MULTITASK_STRATEGIES = ("reject", "interrupt", "rollback", "enqueue")
FINISH_STATUSES = ("success", "error", "timeout", "interrupted")
CANCEL_ACTIONS = ("interrupt", "rollback")

# A thread is busy while one of its runs is in BUSY_RUN_STATUSES; otherwise its status follows
# the run that ended last (a thread whose runs were all rolled back is idle).
BUSY_RUN_STATUSES = frozenset({"pending", "running"})
THREAD_STATUS_AFTER_RUN = {"success": "idle", "error": "error", "timeout": "error", "interrupted": "interrupted"}

THREAD_SORT_FIELDS = ("thread_id", "status", "created_at", "updated_at")
RUN_STATUSES = tuple(sorted(RUN.statuses))
