"""The `threadstore` command: migrate a database, show its revision, or run the demo."""

from __future__ import annotations

import argparse
import sys

from threadstore import migrate
from threadstore.db import DEFAULT_URL, create_engine, unit_of_work
from threadstore.demo import run_demo
from threadstore.errors import ThreadStoreError
from threadstore.store import Store


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="threadstore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in [
        ("migrate", "upgrade the database schema to the newest revision"),
        ("current", "print the database's schema revision and the newest one"),
        ("demo", "walk a thread through messages, a run with a tool call and its completion"),
    ]:
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument("--url", default=DEFAULT_URL, help=f"database URL (default: {DEFAULT_URL})")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command in ("migrate", "current"):
            engine = create_engine(args.url)
            try:
                if args.command == "migrate":
                    migrate.upgrade(engine)
                    print(f"Database is at revision {migrate.head()}.")
                else:
                    with unit_of_work(engine, write=False) as connection:
                        print(f"current: {migrate.current(connection) or 'none'}\nhead:    {migrate.head()}")
            finally:
                engine.dispose()
        else:
            with Store(args.url, migrate_on_open=True) as store:
                run_demo(store)
    except ThreadStoreError as error:
        print(f"threadstore: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
