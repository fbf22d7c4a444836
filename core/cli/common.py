"""What every command shares: the user's error, the user's paths, parsing, the workbench, progress.

The command line is run by the machine's own user: paths are theirs, resolved against the current
directory like any other tool's, wherever they point (the data root's confinement protects the
web page, not this). Archives and images still go through the same safe-ingest checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..data.datasets import BUILTINS, DatasetSpec
from ..data.storage import default_data_root
from ..jobs import Progress
from ..workbench import Workbench


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2, nothing written."""


def workbench():
    """The command line's workbench: the default data root, the user's own paths."""
    return Workbench(default_data_root(), confine=False)


def user_path(text: str) -> Path:
    """A path the user typed: ~ expanded, relative to the current directory."""
    return Path(text).expanduser().resolve()


def parse_classes(text: str | None) -> tuple[int, ...] | None:
    """'0,1' -> (0, 1); None -> None (all classes)."""
    if text is None:
        return None
    try:
        classes = tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise UserError(f"--classes must be comma-separated class indices, like 0,1 (got {text!r})") from None
    if not classes:
        raise UserError("--classes is empty")
    return classes


def dataset_spec(source: str, classes: str | None = None, per_class: int | None = None, seed: int = 0,
                 subfolders_as_classes: bool = False) -> DatasetSpec:
    """SOURCE (a built-in name, or a path: made absolute here so a run can rebuild it from anywhere)."""
    if per_class is not None and per_class < 1:
        raise UserError("--per-class must be at least 1")
    where = source if source in BUILTINS else str(user_path(source))
    return DatasetSpec(where, parse_classes(classes), per_class, seed, subfolders_as_classes)


def check_positive(args, names) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")


class ProgressBar:
    """on_progress for the terminal: a tqdm bar on a terminal, a line per message otherwise (logs)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.bars: dict[str, object] = {}
        self.last_message = ""

    def __call__(self, event: Progress) -> None:
        if self.stream.isatty():
            self._bar(event)
        elif event.message and event.message != self.last_message and _worth_a_line(event):
            print(event.message, file=self.stream, flush=True)
        self.last_message = event.message

    def _bar(self, event: Progress) -> None:
        from tqdm import tqdm

        bar = self.bars.get(event.job)
        if bar is None or (event.total and bar.total != event.total):
            bar = self.bars[event.job] = tqdm(total=event.total or None, desc=event.job, file=self.stream,
                                              leave=False, dynamic_ncols=True)
        bar.n = event.done
        bar.set_postfix_str(event.message, refresh=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars = {}


def _worth_a_line(event: Progress) -> bool:
    """Without a terminal: every message of a job with few units, about every tenth of a long one."""
    if event.total <= 20 or event.done in (0, 1, event.total):
        return True
    return event.done % max(1, event.total // 10) == 0
