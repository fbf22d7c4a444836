"""Diversity weights beside a training run: the studio's policy against every pool on every core.

Prints a table: seconds for 100 steps of Algorithm 1 at n = 2,000 (Fashion-MNIST 0/1 pixels, else
random images of that size), median of --repeats, on an idle machine and with a `quick` training
run going in the background, started the way the studio starts it (`Workbench.start_run`: the
trainer takes every core but one at background priority, and pauses between steps while the
workbench computes weights). For contrast, once each: the weights on one core beside the trainer on
the other, and the trainer and the weights each on every core (what happened before). Target:
loaded ≤ 1.5× idle.

    python benchmarks/bench_contention.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_startup import features_2000  # noqa: E402
from core.data.datasets import DatasetSpec  # noqa: E402
from core.diversity.weights import WeightsConfig, optimise_weights  # noqa: E402
from core.threads import TRAIN_THREADS_ENV, cpu_count  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from core.training import runs  # noqa: E402
from core.training.config import TrainConfig  # noqa: E402
from core.workbench import Workbench  # noqa: E402


def cpu_threads(n: int):
    return threadpool_limits(limits=n)


def timed_weights(root: Path, features, repeats: int) -> float:
    """Median seconds of the workbench's weights (a fresh cache each time: always computed)."""
    times = []
    for i in range(repeats):
        wb = Workbench(root, confine=False)
        for cached in (root / "cache" / "weights").glob("*"):
            cached.unlink()
        began = time.perf_counter()
        wb.weights(features, WeightsConfig(gamma=0.8))
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def background_run(wb: Workbench, name: str) -> Path:
    config = TrainConfig.preset("quick", steps=1_000_000, device="cpu", checkpoint_every=100_000,
                                sample_every=100_000)
    run_dir = wb.create_run(DatasetSpec("digits"), None, config, name=name)
    wb.start_run(run_dir)
    deadline = time.monotonic() + 120
    while runs.read_status(run_dir).get("state") != "running" or runs.read_status(run_dir).get("step", 0) < 2:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the background run did not start: {runs.read_status(run_dir)}")
        time.sleep(0.5)
    return run_dir


def stop(wb: Workbench, run_dir: Path) -> None:
    wb.stop_run(run_dir)
    deadline = time.monotonic() + 60
    while runs.refresh_status(run_dir).get("state") in runs.ACTIVE_STATES and time.monotonic() < deadline:
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    features, source = features_2000()
    optimise_weights(features[:100], steps=2)  # warm imports and BLAS
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        wb = Workbench(root, confine=False)
        idle = timed_weights(root, features, args.repeats)
        rows.append(("idle machine", idle))
        run_dir = background_run(wb, "sized")
        try:
            rows.append(("beside a training run (it makes way)", timed_weights(root, features, args.repeats)))
            with cpu_threads(1):
                began = time.perf_counter()
                optimise_weights(features, gamma=0.8)
                rows.append(("beside a training run, one core each", time.perf_counter() - began))
        finally:
            stop(wb, run_dir)
        os.environ[TRAIN_THREADS_ENV] = str(cpu_count())  # before: the trainer on every core ...
        run_dir = background_run(wb, "unsized")
        try:
            began = time.perf_counter()
            optimise_weights(features, gamma=0.8)  # ... and the weights too
            rows.append(("beside a training run, every pool on every core", time.perf_counter() - began))
        finally:
            stop(wb, run_dir)
    print(f"weights, 100 steps, n = {len(features):,}, d = {features.shape[1]} ({source}), {cpu_count()} cores")
    print(f"{'situation':<50} {'seconds':>8} {'× idle':>8}")
    for what, seconds in rows:
        print(f"{what:<50} {seconds:>8.2f} {seconds / idle:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
