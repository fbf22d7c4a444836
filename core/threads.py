"""CPU thread pools sized to the cores actually free, and background training that makes way.

On a laptop the studio's own training run and its weights computation would otherwise both claim
every core: numpy's BLAS with 2 threads beside a busy process was 4–10× slower than with 1 (10 steps
at n = 2,000: 14.1 s vs 3.2 s; 100 steps: 284 s vs 7 s idle). So a training process started beside
the studio takes every core but one, at background priority; and while the workbench computes
weights — what a person sits and waits for — training runs of the same data root pause between two
steps (`making_way`), so the weights get every core. With no run active nothing changes.
"""

from __future__ import annotations

import contextlib
import os

TRAIN_THREADS_ENV = "DIVWEIGHTS_TRAIN_THREADS"  # threads a background training process may use
TRAIN_NICE_ENV = "DIVWEIGHTS_TRAIN_NICE"  # its niceness increment (default BACKGROUND_NICE)
BACKGROUND_NICE = 10  # a background job: the studio's interactive work is scheduled first


def cpu_count() -> int:
    """Cores this process may run on (its affinity, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def training_threads() -> int:
    """Threads for a training process started beside the studio: every core but one (at least 1)."""
    return max(1, cpu_count() - 1)


def apply_training_threads() -> None:
    """In a training process started beside the studio (TRAIN_THREADS_ENV set): take the threads it
    was granted and a background priority, so what a person waits for in the studio runs first."""
    value = os.environ.get(TRAIN_THREADS_ENV)
    if not value:
        return
    import torch
    from threadpoolctl import threadpool_limits

    n = max(1, int(value))
    torch.set_num_threads(n)
    threadpool_limits(limits=n)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(int(os.environ.get(TRAIN_NICE_ENV, BACKGROUND_NICE)))


MAKE_WAY_PREFIX = ".make-way-"  # <runs root>/.make-way-<pid>: training of this root pauses while it exists
MAKE_WAY_MAX_S = 3600.0  # a marker older than this (its process died) is ignored


@contextlib.contextmanager
def making_way(runs_root):
    """While inside, background training runs under `runs_root` pause between steps (see `wait_if_asked`)."""
    from pathlib import Path

    marker = Path(runs_root) / f"{MAKE_WAY_PREFIX}{os.getpid()}"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("")
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def way_asked(runs_root) -> bool:
    """Whether a live process asked the training runs under `runs_root` to make way."""
    import time
    from pathlib import Path

    for marker in Path(runs_root).glob(f"{MAKE_WAY_PREFIX}*"):
        try:
            pid, age = int(marker.name.removeprefix(MAKE_WAY_PREFIX)), time.time() - marker.stat().st_mtime
            os.kill(pid, 0)
        except (ValueError, OSError):
            continue
        if age < MAKE_WAY_MAX_S:
            return True
    return False


def wait_if_asked(runs_root, on_wait, should_stop, poll_s: float = 0.2) -> None:
    """In a training process: pause while the studio computes (on_wait() keeps the heartbeat)."""
    import time

    while way_asked(runs_root) and not should_stop():
        on_wait()
        time.sleep(poll_s)
