"""`python -m core SUBCOMMAND ...`: one module per subcommand in this package.

Each command module exposes `add_parser(subparsers)` (registers its arguments and sets `func`);
`func(args) -> int` turns argv into one workbench call and prints a table or writes files. Errors the
user can fix raise `UserError` (or ValueError/FileNotFoundError from the library); they, and any other
OSError (a full or read-only disk), print one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .common import UserError
from ..data.storage import disk_error_message
from ..data.embed import WeightsUnavailable
from ..jobs import JobStopped

COMMANDS = ("studio", "vendi", "weights", "datasets", "embed", "train", "evaluate", "study", "suggest_gamma", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="divweights" if __name__.startswith("divweights") else "python -m core",
                                     description="divweights: diversity weights for generative models")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, ValueError, FileNotFoundError, NotADirectoryError, WeightsUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional dependency this command needs
        from .. import missing_extra

        print(f"error: {missing_extra(exc, f'divweights {args.command}')}", file=sys.stderr)
        return 2
    except OSError as exc:  # a full or read-only disk, a permission: one line, not a traceback
        where = str(Path(exc.filename).parent) if getattr(exc, "filename", None) else "the output folder"
        print(f"error: {disk_error_message(exc, where)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, JobStopped):
        print("interrupted", file=sys.stderr)
        return 130
