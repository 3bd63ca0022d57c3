"""A writer for the crash tests: `python -m tests.crash_writer URL LABEL` commits transactions of
a thread, three messages, a run and two steps, printing "ready" once its store is open and then
each one's marker after it commits, until it is killed. `python -m tests.crash_writer URL
migrate` prints "migrating" and upgrades."""

from __future__ import annotations

import sys

from threadstore import Store, Transaction
from threadstore.db import create_engine
from threadstore.migrate import upgrade

MESSAGES_PER_TRANSACTION = 3
STEPS_PER_TRANSACTION = 2


def write_one(tx: Transaction, assistant: str, marker: str) -> str:
    """One transaction's work: a thread, its messages, a run with its steps, completed."""
    thread = tx.threads.create(metadata={"marker": marker})
    for index in range(MESSAGES_PER_TRANSACTION):
        tx.messages.create(thread.id, role="user", content=f"{marker} message {index}" * 20)
    run = tx.runs.create(thread.id, assistant_id=assistant, metadata={"marker": marker})
    tx.runs.start(run.id)
    for _ in range(STEPS_PER_TRANSACTION):
        tx.run_steps.create(run.id, step_details={"type": "tool_calls", "tool_calls": []})
    tx.runs.complete(run.id)
    return thread.id


def write_forever(url: str, label: str) -> None:
    with Store(url, migrate_on_open=False) as store:
        assistant = store.assistants.create(model="gpt-4o").id
        print("ready", flush=True)
        number = 0
        while True:
            marker = f"{label}-{number}"
            with store.transaction() as tx:
                write_one(tx, assistant, marker)
            print(marker, flush=True)
            number += 1


def migrate(url: str) -> None:
    engine = create_engine(url)
    print("migrating", flush=True)
    upgrade(engine)
    print("migrated", flush=True)


if __name__ == "__main__":
    if sys.argv[2] == "migrate":
        migrate(sys.argv[1])
    else:
        write_forever(sys.argv[1], sys.argv[2])
