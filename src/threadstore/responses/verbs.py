"""The response lifecycle verbs (README.md, "Responses and Conversations"): claims and starts,
output items and streamed text while in progress, and the ends, which close the output items
still in progress and, for `complete`, append the response's input and output to its
conversation in the same transaction. Status moves go through transitions.py; the events of
output items and text go through the event log, each numbered after the response's last."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from threadstore.errors import ConflictError, NotFoundError, ValidationError
from threadstore.fastsql import ONE, Raw, Shapes, Statement, one_of, word
from threadstore.records import Json, Row
from threadstore.responses.api import Response
from threadstore.responses.items import Item, check_item, ended
from threadstore.responses.models import response_items, responses
from threadstore.responses.queries import (
    INSERT_RESPONSE_ITEM,
    SET_COUNTS,
    STATE,
    STATE_COLUMNS,
    append_to_conversation,
    busy_conversation,
    in_progress_on,
    load_response,
    response_item_rows,
    take_positions,
)
from threadstore.responses.states import (
    APPENDING,
    ERROR_CODES,
    INCOMPLETE_REASONS,
    ITEM_STATUS_WHEN_RESPONSE_ENDS,
    RESPONSE,
)
from threadstore.responses.streams import write
from threadstore.scope import Scope
from threadstore.transitions import announce_moved, move
from threadstore.validation import check_choice, check_int, check_mapping, check_string

# An item in one of these statuses is still being produced; its response's end closes it.
OPEN_ITEM_STATUSES = frozenset({"in_progress", "searching", "generating", "interpreting"})


def _candidate(passed_over: int) -> sa.Select[Any]:
    """The oldest queued background response whose conversation has none in progress (what the
    verbs read of it, locked), leaving out the `passed_over` conversations this claim found taken
    meanwhile."""
    queued, running, earlier = responses.alias("queued"), responses.alias("running"), responses.alias("earlier")
    busy = sa.select(ONE).where(
        running.c.conversation_id == queued.c.conversation_id, running.c.status == word(APPENDING)
    )
    # Only the oldest queued response of a conversation is a candidate. On PostgreSQL a claimer
    # skips the rows other claimers have locked (SKIP LOCKED): were the next one of the same
    # conversation a candidate, two claimers would start two responses of one conversation, and
    # the second would break the one-in-progress index. Its conversation's queue keeps its order too.
    waiting = sa.select(ONE).where(
        earlier.c.conversation_id == queued.c.conversation_id,
        one_of(earlier.c.status, ["queued"]),
        sa.tuple_(earlier.c.created_at, earlier.c.id) < sa.tuple_(queued.c.created_at, queued.c.id),
    )
    skipped = [sa.bindparam(f"passed_{i}", type_=sa.String) for i in range(passed_over)]
    return (
        sa.select(*(queued.c[name] for name in STATE_COLUMNS))
        .where(
            one_of(queued.c.status, ["queued"]),
            queued.c.background,
            ~sa.exists(busy),
            ~sa.exists(waiting),
            *([queued.c.conversation_id.not_in(skipped)] if skipped else []),
        )
        .order_by(queued.c.created_at, queued.c.id)
        .limit(ONE)
        .with_for_update(skip_locked=True)
    )


_CANDIDATES = Shapes(_candidate)
# A response's items, in order: all of them (to append to its conversation), or its output alone.
_ITEMS = {
    everything: Statement(
        sa.select(response_items)
        .where(
            response_items.c.response_id == sa.bindparam("id"),
            *([] if everything else [response_items.c.kind == word("output")]),
        )
        .order_by(response_items.c.position)
    )
    for everything in (False, True)
}
_OUTPUT_ITEM = Statement(
    sa.select(response_items).where(
        response_items.c.response_id == sa.bindparam("id"),
        response_items.c.id == sa.bindparam("item_id"),
        response_items.c.kind == word("output"),
    )
)
_SET_ITEM = Statement(
    sa.update(response_items)
    .where(response_items.c.response_id == sa.bindparam("id"), response_items.c.position == sa.bindparam("position"))
    .values(data=sa.bindparam("data", type_=response_items.c.data.type))
)


def _usage(usage: object) -> Json | None:
    """The API's usage object from the counts given; details default to zero."""
    if usage is None:
        return None
    given = check_mapping("usage", usage)  # a copy, its details checked as JSON too
    input_tokens = check_int("usage.input_tokens", given.get("input_tokens"), minimum=0)
    output_tokens = check_int("usage.output_tokens", given.get("output_tokens"), minimum=0)
    total = given.get("total_tokens", input_tokens + output_tokens)
    input_details = given.get("input_tokens_details", {})
    if type(input_details) is not dict:
        check_mapping("usage.input_tokens_details", input_details)
    output_details = given.get("output_tokens_details", {})
    if type(output_details) is not dict:
        check_mapping("usage.output_tokens_details", output_details)
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, **input_details},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0, **output_details},
        "total_tokens": check_int("usage.total_tokens", total, minimum=0),
    }


def _starting(raw: Raw, row: Row) -> tuple[dict[str, Any], str | None]:
    """What starting the queued response of `row` (STATE's columns) writes, and the response in
    progress on its conversation that stands in the way, if any. Its conversation's row is locked
    first, as every writer that starts a response on it locks it: on PostgreSQL a start that
    raced this one has committed by then, and the check's snapshot holds it."""
    values: dict[str, Any] = {"sequence_number": row["sequence_number"] + 1, "context_position": None}
    conversation_id = row["conversation_id"]
    if conversation_id is None or row["status"] != "queued":  # the move itself refuses a response not queued
        return values, None
    start = take_positions(raw, conversation_id, 0)
    values["context_position"] = None if start is None else start - 1
    return values, in_progress_on(raw, conversation_id)


def _working(row: Row) -> None:
    if row["status"] != "in_progress":
        raise ConflictError(f"Response {row['id']} is {row['status']}: its output changes only while in progress.")


class ResponseVerbs:
    """The lifecycle verbs of the responses repository."""

    _scope: Scope

    def claim_next(self) -> Response | None:
        """Atomically take the oldest queued background response whose conversation has none in
        progress (the oldest queued of its conversation), and start it; None if there is none.
        Several workers may call it at once: each gets a response of its own, or None. A
        conversation on which a response started meanwhile (`start`, or `create` without
        `background`) is passed over, never an error.
        """
        with self._scope.write() as raw:
            now = self._scope.now()
            passed_over: list[str] = []  # conversations found taken meanwhile
            while True:
                skipped = {f"passed_{i}": conversation for i, conversation in enumerate(passed_over)}
                row = raw.first(_CANDIDATES[len(passed_over)], skipped)
                if row is None:
                    return None
                values, busy = _starting(raw, row)
                if busy is None:
                    moved = move(raw, responses, RESPONSE, "claim_next", row["id"], now, values=values)
                    return load_response(raw, moved)
                passed_over.append(row["conversation_id"])

    def start(self, response_id: str) -> Response:
        """queued → in_progress.

        Raises:
            NotFoundError: no such response. InvalidTransitionError: it is not queued.
            ConflictError: its conversation has a response in progress (a conversation has at most
                one), or another writer moved it first.
        """
        with self._scope.write() as raw:
            row = STATE.get(raw, response_id, for_update=True)
            values, busy = _starting(raw, row)
            if busy is not None:
                raise busy_conversation(row["conversation_id"], busy)
            moved = move(raw, responses, RESPONSE, "start", response_id, self._scope.now(), values=values)
            return load_response(raw, moved)

    def add_output_item(self, response_id: str, *, item: Json) -> Item:
        """Add an output item (a message to stream text into, a function call, ...) to a response
        in progress. An item without a status starts `in_progress` and is closed when the
        response ends; one given `completed` is done at once. Streams
        `response.output_item.added` (and `response.output_item.done` when it is done).

        Raises:
            ValidationError: an unknown type or a malformed item; nothing is written.
            NotFoundError: no such response.
            ConflictError: the response is not in progress, or has an item with that id.
        """
        data = check_item("item", item, default_status="in_progress")
        with self._scope.write() as raw:
            row = STATE.get(raw, response_id, for_update=True)
            _working(row)
            index = row["output_count"]
            (item_row,) = response_item_rows(response_id, "output", row["input_count"] + index, [data])
            raw.execute(INSERT_RESPONSE_ITEM, item_row)
            sequence, now = row["sequence_number"], self._scope.now()
            write(raw, response_id, "response.output_item.added", sequence, now, output_index=index, item=data)
            sequence += 1
            if data.get("status") not in OPEN_ITEM_STATUSES:
                write(raw, response_id, "response.output_item.done", sequence, now, output_index=index, item=data)
                sequence += 1
            raw.execute(SET_COUNTS, {"id": response_id, "output_count": index + 1, "sequence_number": sequence})
        return Item(data["id"], data["type"], data)

    def append_text(self, response_id: str, *, item_id: str, text: str) -> Item:
        """Append streamed text to an output message in progress (to its last output_text part,
        or a new one) and stream `response.output_text.delta`.

        Raises:
            ValidationError: `text` is not a string; nothing is written.
            NotFoundError: no such response, or no such output item of it.
            ConflictError: the response or the message is not in progress, or the item is not a message.
        """
        delta = check_string("text", text)
        with self._scope.write() as raw:
            row = STATE.get(raw, response_id, for_update=True)
            _working(row)
            found = raw.first(_OUTPUT_ITEM, {"id": response_id, "item_id": check_string("item_id", item_id)})
            if found is None:
                raise NotFoundError("output item", item_id)
            data = found["data"]
            if data["type"] != "message" or data["status"] != "in_progress":
                raise ConflictError(f"Output item {item_id} is not a message in progress.")
            content = list(data["content"])
            if not content or content[-1].get("type") != "output_text":
                content.append({"type": "output_text", "text": "", "annotations": []})
            content[-1] = {**content[-1], "text": content[-1]["text"] + delta}
            data = {**data, "content": content}
            raw.execute(_SET_ITEM, {"id": response_id, "position": found["position"], "data": data})
            sequence = row["sequence_number"]
            write(
                raw,
                response_id,
                "response.output_text.delta",
                sequence,
                self._scope.now(),
                item_id=item_id,
                output_index=found["position"] - row["input_count"],
                content_index=len(content) - 1,
                delta=delta,
                logprobs=[],
            )
            counts = {"id": response_id, "output_count": row["output_count"], "sequence_number": sequence + 1}
            raw.execute(SET_COUNTS, counts)
        return Item(data["id"], data["type"], data)

    def complete(self, response_id: str, *, usage: Json | None = None) -> Response:
        """in_progress → completed: its output items still in progress complete, and its input
        and output items are appended to its conversation, in the same transaction.

        Args:
            response_id: the response.
            usage: `input_tokens` and `output_tokens` (and optionally `total_tokens` and details).

        Raises:
            ValidationError: bad usage; nothing is written.
            NotFoundError: no such response. InvalidTransitionError: it is not in progress.
            ConflictError: another writer moved it first, or an item's id is already in its conversation.
        """
        return self._end(response_id, "complete", {"usage": _usage(usage)})

    def fail(self, response_id: str, *, code: str, message: str) -> Response:
        """queued or in_progress → failed, with its error; output items in progress become incomplete.

        Raises:
            ValidationError: an unknown code or a bad message; nothing is written.
            NotFoundError: no such response. InvalidTransitionError: it has ended.
            ConflictError: another writer moved it first.
        """
        values = {
            "error_code": check_choice("code", code, ERROR_CODES),
            "error_message": check_string("message", message),
        }
        return self._end(response_id, "fail", values)

    def mark_incomplete(self, response_id: str, *, reason: str) -> Response:
        """in_progress → incomplete, with its reason; output items in progress become incomplete.

        Raises:
            ValidationError: an unknown reason; nothing is written.
            NotFoundError: no such response. InvalidTransitionError: it is not in progress.
            ConflictError: another writer moved it first.
        """
        return self._end(
            response_id, "mark_incomplete", {"incomplete_reason": check_choice("reason", reason, INCOMPLETE_REASONS)}
        )

    def cancel(self, response_id: str) -> Response:
        """queued or in_progress → cancelled, for a background response; output items in
        progress become incomplete. The worker sees the status and stops.

        Raises:
            ValidationError: it is not a background response; nothing is written.
            NotFoundError: no such response. InvalidTransitionError: it has ended.
            ConflictError: another writer moved it first.
        """
        return self._end(response_id, "cancel", {})

    def _end(self, response_id: str, verb: str, values: dict[str, Any]) -> Response:
        target = next(iter(RESPONSE.verbs[verb]))
        with self._scope.write() as raw:
            row = STATE.get(raw, response_id, for_update=True)
            if verb == "cancel" and not row["background"]:
                raise ValidationError(
                    f"Response {response_id} is not a background response: only those can be cancelled."
                )
            # Nothing is read or written before a move the status refuses: inside a transaction,
            # a caller that catches the refusal must find nothing changed.
            appends = target == "completed" and row["conversation_id"] is not None
            allowed = row["status"] in RESPONSE.verb_sources(verb, target)
            items = raw.rows(_ITEMS[appends], {"id": response_id}) if allowed else []
            now = self._scope.now()
            sequence = _close_items(raw, row, items, target, now)
            values = {**values, "sequence_number": sequence + 1}
            moved = move(raw, responses, RESPONSE, verb, response_id, now, values=values, announce=False)
            output = [Item.from_row(item) for item in items if item["kind"] == "output"]
            if raw.events:  # its event shows the output read here
                announce_moved(raw, responses, [{**moved, "output": output}], now)
            if appends:
                _append_to_conversation(raw, row["conversation_id"], items, now)
            return Response.from_row(moved, output)


def _close_items(raw: Raw, row: Row, items: list[dict[str, Any]], target: str, now: int) -> int:
    """End the open output items of a response moving to `target` (in `items`, updated in
    place), stream their `response.output_item.done`, and return the next sequence number."""
    sequence = int(row["sequence_number"])
    for item in items:
        if item["kind"] != "output" or item["data"].get("status") not in OPEN_ITEM_STATUSES:
            continue
        item["data"] = ended(item["data"], target, ITEM_STATUS_WHEN_RESPONSE_ENDS[target])
        raw.execute(_SET_ITEM, {"id": row["id"], "position": item["position"], "data": item["data"]})
        index = item["position"] - row["input_count"]
        write(raw, row["id"], "response.output_item.done", sequence, now, output_index=index, item=item["data"])
        sequence += 1
    return sequence


def _append_to_conversation(raw: Raw, conversation_id: str, items: list[dict[str, Any]], now: int) -> None:
    start = take_positions(raw, conversation_id, len(items))
    if start is not None:  # the conversation may have been deleted meanwhile
        append_to_conversation(raw, conversation_id, start, [item["data"] for item in items], now)
