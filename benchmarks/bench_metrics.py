"""Metric timings at the paper's evaluation scale: 10,000 generated vs 6,000 real features.

    .venv/bin/python benchmarks/bench_metrics.py                  # pixels (d = 784)
    .venv/bin/python benchmarks/bench_metrics.py --d 768 --n-gen 2000

Each metric runs on CPU in numpy/scipy (float64); the table shows seconds per call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.evaluation.metrics.fid import fid, weighted_fid  # noqa: E402
from core.evaluation.metrics.inception import inception_score  # noqa: E402
from core.evaluation.metrics.kid import kid  # noqa: E402
from core.evaluation.metrics.prc import precision_recall  # noqa: E402
from core.diversity.vendi import vendi_score  # noqa: E402


def features(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-real", type=int, default=6000)
    parser.add_argument("--n-gen", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=784)
    args = parser.parse_args()
    real, gen = features(args.n_real, args.d, 0), features(args.n_gen, args.d, 1)
    labels = np.arange(args.n_real) % 2
    p = np.random.default_rng(2).dirichlet(np.ones(args.n_real))
    rows = [
        ("VS (generated)", lambda: vendi_score(gen)),
        ("FID", lambda: fid(real, gen)),
        ("weighted FID", lambda: weighted_fid(real, gen, p)),
        ("precision/recall k=3", lambda: precision_recall(real, gen)),
        ("KID 100 x 1000", lambda: kid(real, gen)),
        ("IS (probe fit + predict)", lambda: inception_score(real, gen, labels)),
    ]
    print(f"n_real={args.n_real} n_gen={args.n_gen} d={args.d}")
    print(f"{'metric':<28}{'seconds':>10}")
    for name, fn in rows:
        print(f"{name:<28}{timed(fn):>10.2f}")


if __name__ == "__main__":
    main()
