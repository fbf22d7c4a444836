"""One protocol for every long job (embedding, weights, sweeps, evaluation, the study, training).

A job takes `on_progress(event)`, called with a `Progress` whenever something moved, and
`should_stop()`, polled between units of work: True ends the job cleanly. The studio turns events
into streamed updates, the command line into a progress bar (core.cli.progress).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Progress:
    """Where a long job stands."""

    job: str  # "embed", "weights", "sweep", "evaluate", "study", "train"
    done: int  # units finished (images, steps, runs, models)
    total: int  # units in all (0 = not known)
    message: str = ""  # for people, e.g. "embedding 1,200/2,000 images"
    values: dict = field(default_factory=dict)  # the job's numbers, e.g. weights: vs, entropy, ess, lr

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


OnProgress = Callable[[Progress], None] | None
ShouldStop = Callable[[], bool] | None


class JobStopped(RuntimeError):
    """should_stop() ended a job before its end; nothing half-made was kept."""


def reporter(on_progress: OnProgress, job: str, total: int = 0):
    """-> report(done, message="", **values): one call per unit of work, a no-op without a callback."""

    def report(done: int, message: str = "", total_now: int | None = None, **values) -> None:
        if on_progress is not None:
            on_progress(Progress(job, int(done), int(total if total_now is None else total_now), message, values))

    return report


def stopped(should_stop: ShouldStop) -> bool:
    return should_stop is not None and bool(should_stop())
