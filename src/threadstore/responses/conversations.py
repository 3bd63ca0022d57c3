"""The conversations repository (`store.conversations`) and its items (`store.conversations.items`)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from threadstore.errors import NotFoundError
from threadstore.fastsql import insert
from threadstore.ids import new_id
from threadstore.openai.api import Deleted
from threadstore.pagination import DEFAULT_LIMIT, Lister, Owner, Page, list_params
from threadstore.records import Json
from threadstore.responses.api import Conversation
from threadstore.responses.items import MAX_ITEMS_PER_CALL, Item, check_items
from threadstore.responses.models import conversation_items, conversations
from threadstore.responses.queries import CONVERSATIONS, append_to_conversation, take_positions
from threadstore.rows import Rows
from threadstore.scope import Scope
from threadstore.types import Order
from threadstore.validation import check_metadata, check_string

_INSERT = insert(conversations)
_ITEMS = Rows(conversation_items, "conversation item", parent="conversation_id")
_LIST = Lister(
    sa.select(conversation_items),
    conversation_items,
    scope=("conversation_id",),
    owner=Owner(conversations, "conversation", "conversation_id"),
    key=("position",),
)


class ConversationItems:
    """The items of conversations, in the order of their positions."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def create(self, conversation_id: str, *, items: list[Json]) -> Page[Item]:
        """Append up to 20 items to a conversation, in the order given.

        Args:
            conversation_id: the conversation.
            items: the items (messages, function calls, ...), each as the API takes it.

        Raises:
            ValidationError: more than 20 items, an unknown type or a malformed item; nothing is written.
            NotFoundError: there is no such conversation.
            ConflictError: an item's id is already in the conversation; nothing is written.
        """
        checked = check_items("items", items, limit=MAX_ITEMS_PER_CALL)
        with self._scope.write() as raw:
            start = take_positions(raw, conversation_id, len(checked))
            if start is None:
                raise NotFoundError("conversation", conversation_id)
            append_to_conversation(raw, conversation_id, start, checked, self._scope.now())
        return Page(data=[Item(item["id"], item["type"], item) for item in checked], has_more=False)

    def list(
        self,
        conversation_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        order: Order = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page[Item]:
        """A page of a conversation's items, by position, newest first by default.

        Args:
            conversation_id: the conversation.
            limit: the most items a page holds, 1 to 100 (default 20).
            order: "asc" or "desc" (the default), by position.
            after: the id of an item of this conversation; the page holds the items after it.
            before: the id of an item of this conversation; the page holds the items before it.

        Raises:
            ValidationError: a bad limit, order or cursor (also an item of another conversation).
            NotFoundError: there is no such conversation.
        """
        params = list_params(limit, order, after, before)
        with self._scope.read() as raw:
            return _LIST.page(raw, {"conversation_id": conversation_id}, params, Item.from_row)

    def get(self, conversation_id: str, item_id: str) -> Item:
        """The item with this id in this conversation.

        Raises:
            NotFoundError: there is none.
        """
        with self._scope.read() as raw:
            return Item.from_row(_ITEMS.get(raw, item_id, conversation_id))

    def delete(self, conversation_id: str, item_id: str) -> Conversation:
        """Delete an item of a conversation; the others keep their positions. Returns the
        conversation, as the API does.

        Raises:
            NotFoundError: there is no such item in this conversation.
        """
        with self._scope.write() as raw:
            _ITEMS.delete(raw, item_id, conversation_id)
            return Conversation.from_row(CONVERSATIONS.get(raw, conversation_id))


class Conversations:
    """Create, read, update and delete conversations; `items` holds their items."""

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self.items = ConversationItems(scope)

    def create(self, *, items: list[Json] | None = None, metadata: dict[str, str] | None = None) -> Conversation:
        """Create a conversation, with its first items (at most 20) if given.

        Args:
            items: its first items, in order.
            metadata: up to 16 string pairs.

        Raises:
            ValidationError: bad metadata, more than 20 items or a malformed item; nothing is written.
        """
        checked = check_items("items", [] if items is None else items, limit=MAX_ITEMS_PER_CALL)
        values: dict[str, Any] = {
            "id": new_id("conv"),
            "metadata": check_metadata(metadata),
            "next_position": len(checked),
        }
        with self._scope.write() as raw:
            values["created_at"] = now = self._scope.now()
            raw.execute(_INSERT, values)
            append_to_conversation(raw, values["id"], 0, checked, now)
        return Conversation.from_row(values)

    def get(self, conversation_id: str) -> Conversation:
        """The conversation with this id.

        Raises:
            NotFoundError: there is none.
        """
        with self._scope.read() as raw:
            return Conversation.from_row(CONVERSATIONS.get(raw, check_string("conversation_id", conversation_id)))

    def update(self, conversation_id: str, *, metadata: dict[str, str] | None) -> Conversation:
        """Replace a conversation's metadata, the only field a client may change.

        Args:
            conversation_id: the conversation.
            metadata: up to 16 string pairs; None clears it.

        Raises:
            ValidationError: bad metadata; nothing is written.
            NotFoundError: there is no such conversation.
        """
        values = {"metadata": check_metadata(metadata)}
        with self._scope.write() as raw:
            return Conversation.from_row(CONVERSATIONS.update(raw, conversation_id, values))

    def delete(self, conversation_id: str) -> Deleted:
        """Delete a conversation and its items. Its responses stay, without a conversation.

        Raises:
            NotFoundError: there is no such conversation.
        """
        with self._scope.write() as raw:
            CONVERSATIONS.delete(raw, conversation_id)
        return Deleted(conversation_id, "conversation.deleted")
