"""An application that shares its database with threadstore: its own SQLModel tables (one with a
foreign key to a threadstore thread) and its own Alembic history, in `migrations/`."""
