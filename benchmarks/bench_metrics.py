"""Metric timings at the paper's evaluation scale: 10,000 generated vs 6,000 real features.

    .venv/bin/python benchmarks/bench_metrics.py                  # pixels (d = 784)
    .venv/bin/python benchmarks/bench_metrics.py --d 768 --n-gen 2000
    .venv/bin/python benchmarks/bench_metrics.py --device cuda --d 768 --n-real 10000

FID, weighted FID, precision/recall and KID run on numpy (CPU) or, with --device cuda, on float64
torch tensors already on the GPU (the same code); VS and IS (a scikit-learn probe) run on the CPU.
The table shows seconds per call (CUDA calls synchronised) and the total.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.arrays import on_device  # noqa: E402
from core.devices import resolve_device  # noqa: E402
from core.evaluation.metrics.fid import fid, weighted_fid  # noqa: E402
from core.evaluation.metrics.inception import inception_score  # noqa: E402
from core.evaluation.metrics.kid import kid  # noqa: E402
from core.evaluation.metrics.prc import precision_recall  # noqa: E402
from core.diversity.vendi import vendi_score  # noqa: E402


def features(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).random((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def timed(fn, device: str) -> float:
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-real", type=int, default=6000)
    parser.add_argument("--n-gen", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=784)
    parser.add_argument("--device", default="cpu", help="cpu (numpy) or cuda (torch tensors on the GPU)")
    args = parser.parse_args()
    device = resolve_device(args.device)  # cuda without a GPU: one clear error, no table
    real, gen = features(args.n_real, args.d, 0), features(args.n_gen, args.d, 1)
    labels = np.arange(args.n_real) % 2
    p = np.random.default_rng(2).dirichlet(np.ones(args.n_real))
    real_d, gen_d = on_device([real, gen], device)
    rows = [
        ("VS (generated, CPU)", lambda: vendi_score(gen)),
        ("FID", lambda: fid(real_d, gen_d)),
        ("weighted FID", lambda: weighted_fid(real_d, gen_d, p)),
        ("precision/recall k=3", lambda: precision_recall(real_d, gen_d)),
        ("KID 100 x 1000", lambda: kid(real_d, gen_d)),
        ("IS (probe fit + predict, CPU)", lambda: inception_score(real, gen, labels)),
    ]
    fid(real_d[:64], gen_d[:64])  # warm-up: libraries, CUDA context and kernels
    print(f"n_real={args.n_real} n_gen={args.n_gen} d={args.d} device={device}")
    print(f"{'metric':<32}{'seconds':>10}")
    total = 0.0
    for name, fn in rows:
        seconds = timed(fn, device)
        total += seconds
        print(f"{name:<32}{seconds:>10.2f}")
    print(f"{'all metrics':<32}{total:>10.2f}")


if __name__ == "__main__":
    main()
