"""`python -m core SUBCOMMAND ...`: one module per subcommand under core/commands/.

Each command module exposes `add_parser(subparsers)` (registers its arguments and sets
`func`) and its `func(args) -> int`. Errors the user can fix raise `UserError`; they print
one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("vendi", "weights", "datasets", "embed", "train", "evaluate", "study")


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing written."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="divweights command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"core.cli.{name}")
        except ModuleNotFoundError as exc:  # a command not built yet in this checkout
            if exc.name != f"core.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
