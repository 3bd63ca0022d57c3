"""The Responses and Conversations API: conversations, their items, responses and their items."""
