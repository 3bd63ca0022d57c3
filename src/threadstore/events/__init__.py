"""The durable event stream: every create and status move of a thread's objects, written in the
same transaction as the change (see README.md, "Events")."""
