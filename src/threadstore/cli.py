"""The `threadstore` command: migrate a database and inspect its schema revision, or run the demo.

Every failure exits non-zero with one line on stderr ("threadstore: ..."), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy.engine import URL, Engine

from threadstore.db import DEFAULT_URL, URL_VARIABLE, create_engine, in_schema, normalize_url, url_from_environment
from threadstore.errors import StorageError, ThreadStoreError

# name: (help, whether it takes --url/--schema, its positional revision: None, required, or optional)
_COMMANDS: dict[str, tuple[str, bool, str | None]] = {
    "migrate": ("upgrade the database schema to REVISION (default: the newest)", True, "?"),
    "downgrade": ("downgrade the database schema to REVISION ('base' drops every table)", True, "1"),
    "current": ("print the database's schema revision and the newest one", True, None),
    "history": ("list threadstore's schema revisions, newest first", False, None),
    "stamp": ("record REVISION as the database's without running migrations", True, "1"),
    "check": ("compare threadstore's models with the database; exit 1 on a difference", True, None),
    "demo": ("walk a thread through messages, a run with a tool call and its completion", True, None),
}


def _version() -> str:
    try:
        return version("threadstore")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="threadstore", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"threadstore {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (text, on_database, revision) in _COMMANDS.items():
        command = commands.add_parser(name, help=text, description=text)
        if revision is not None:
            command.add_argument("revision", nargs=None if revision == "1" else "?", default="head", metavar="REVISION")
        if on_database:
            command.add_argument(
                "--url", help=f"database URL (default: ${URL_VARIABLE}, else {DEFAULT_URL}); postgres:// works too"
            )
            command.add_argument("--schema", help="PostgreSQL schema of threadstore's tables (default: search_path)")
    return parser


def _existing_sqlite(url: URL) -> None:
    """Refuse a SQLite file that does not exist: inspecting a database must not create one.

    Raises:
        StorageError: the file is missing.
    """
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database or "")
        if not path.is_file():
            raise StorageError(f"no database at {path} (nothing to inspect; 'threadstore migrate' creates it)")


@contextmanager
def _engine(args: argparse.Namespace, *, must_exist: bool) -> Iterator[Engine]:
    url = in_schema(normalize_url(url_from_environment(args.url)), args.schema)
    if must_exist:
        _existing_sqlite(url)
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def _migrate(args: argparse.Namespace) -> int:
    from threadstore import migrate

    with _engine(args, must_exist=False) as engine:
        migrate.upgrade(engine, args.revision, schema=args.schema)
        with engine.connect() as connection:
            print(f"Database is at revision {migrate.current(connection) or 'none'}.")
    return 0


def _downgrade(args: argparse.Namespace) -> int:
    from threadstore import migrate

    with _engine(args, must_exist=True) as engine:
        migrate.downgrade(engine, args.revision)
        with engine.connect() as connection:
            print(f"Database is at revision {migrate.current(connection) or 'none'}.")
    return 0


def _current(args: argparse.Namespace) -> int:
    from threadstore import migrate
    from threadstore.db import unit_of_work

    with _engine(args, must_exist=True) as engine, unit_of_work(engine, write=False) as connection:
        print(f"current: {migrate.current(connection) or 'none'}\nhead:    {migrate.head()}")
    return 0


def _history(args: argparse.Namespace) -> int:
    from threadstore import migrate

    for line in migrate.history():
        print(line)
    return 0


def _stamp(args: argparse.Namespace) -> int:
    from threadstore import migrate

    with _engine(args, must_exist=False) as engine:
        migrate.stamp(engine, args.revision, schema=args.schema)
        print(f"Database is stamped at revision {args.revision}.")
    return 0


def _check(args: argparse.Namespace) -> int:
    from threadstore import migrate

    with _engine(args, must_exist=True) as engine:
        differences = migrate.check(engine)
    for difference in differences:
        print(difference)
    if differences:
        print(f"threadstore: the database differs from threadstore's models ({len(differences)})", file=sys.stderr)
        return 1
    print("The database matches threadstore's models.")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from threadstore.demo import run_demo
    from threadstore.store import Store

    with Store(args.url, schema=args.schema, migrate_on_open=True) as store:
        run_demo(store)
    return 0


_RUN: dict[str, Callable[[argparse.Namespace], int]] = {
    "migrate": _migrate,
    "downgrade": _downgrade,
    "current": _current,
    "history": _history,
    "stamp": _stamp,
    "check": _check,
    "demo": _demo,
}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        status = _RUN[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try
        return status
    except ThreadStoreError as error:
        print(f"threadstore: {' '.join(str(error).split())}", file=sys.stderr)  # a driver's message may span lines
        return 1
    except BrokenPipeError:
        # The reader went away (`threadstore demo | head`): stop quietly. stdout goes to devnull so
        # that the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("threadstore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
