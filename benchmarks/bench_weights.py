"""Speed of the diversity-weights optimiser (Algorithm 1, 100 steps) against the published formulation.

Prints a table: implementation, n, d, dtype, device, median seconds over repeats, speed-up over the
baseline measured in the same run. Data: Fashion-MNIST pixels (classes 0 and 1, d = 784) from Debian's
`dataset-fashion-mnist` when present, else random non-negative features of the same shape; the
n = 70,000 row uses random features with d = 768 (a CLIP-sized embedding). With --device cuda the
features are moved to the GPU before the clock starts (as GPU embeddings would be).

    python benchmarks/bench_weights.py                       # default CPU table
    python benchmarks/bench_weights.py --sizes 1000,6000 --repeats 3 --baselines
    python benchmarks/bench_weights.py --device cuda --sizes 6000,1000000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.diversity.weights import optimise_weights  # noqa: E402


def autograd_weights(features, gamma=0.8, steps=100, side="items", dtype=torch.float64, device="cpu"):
    """The straightforward formulations, for comparison: autograd through eigvalsh of the n×n matrix
    diag(√p) K diag(√p) (the published code) or of the d×d matrix Xᵀ diag(p) X ("plain" d×d)."""
    X = torch.as_tensor(features, dtype=dtype, device=device)
    X = X / X.norm(dim=1, keepdim=True)
    K = X @ X.T if side == "items" else None
    w = torch.zeros(len(X), dtype=dtype, device=device, requires_grad=True)
    opt = torch.optim.Adam([w], lr=0.1, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.99)
    for _ in range(steps):
        p = torch.softmax(w, 0)
        A = p.sqrt()[:, None] * K * p.sqrt()[None, :] if side == "items" else X.T @ (p[:, None] * X)
        lam = torch.linalg.eigvalsh(A)
        lam = lam[lam > 0]
        loss = -(gamma * torch.exp(-(lam * lam.log()).sum()) + (1 - gamma) * -(p * p.log()).sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return torch.softmax(w, 0).detach()


def fashion_pixels(n: int) -> np.ndarray | None:
    try:
        from core.data.datasets import load_dataset

        data = load_dataset("fashion-mnist", classes=(0, 1), per_class=n // 2, seed=0)
    except Exception:
        return None
    return data.images.reshape(len(data.images), -1).astype(np.float64) / 255.0


def features_for(n: int, d: int) -> tuple[np.ndarray, str]:
    if d == 784 and n <= 12000:
        pixels = fashion_pixels(n)
        if pixels is not None:
            return pixels, "fashion-mnist 0/1 pixels"
    return np.abs(np.random.default_rng(0).normal(size=(n, d))), "random |N(0,1)|"


def numpy_blas() -> str:
    """Which BLAS kernels numpy (the CPU engine) runs: OPENBLAS_CORETYPE, where set, overrides the
    library's own CPU detection, and older kernels can be much slower on a newer CPU."""
    import os

    from threadpoolctl import threadpool_info

    libs = [f"{i.get('internal_api')} {i.get('version')} {i.get('architecture', '')}".strip()
            for i in threadpool_info() if "numpy" in i.get("filepath", "")]
    forced = os.environ.get("OPENBLAS_CORETYPE")
    return f"numpy BLAS {', '.join(libs) or 'unknown'}" + (f" (OPENBLAS_CORETYPE={forced})" if forced else "")


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,6000,70000", help="comma-separated n")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baselines", action="store_true", help="also time the autograd formulations")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}; {numpy_blas()}")
    print(f"| {'implementation':<22} | {'n':>9} | {'d':>4} | {'dtype':<7} | {'median s':>9} | {'speed-up':>8} | data")
    print(f"|{'-' * 24}|{'-' * 11}|{'-' * 6}|{'-' * 9}|{'-' * 11}|{'-' * 10}|-----")
    for n in [int(s) for s in args.sizes.split(",")]:
        d = 784 if n <= 12000 else 768
        X, source = features_for(n, d)
        # on a GPU the features start there, as a user's GPU embeddings would (no host copy timed)
        X_in = X if args.device == "cpu" else torch.as_tensor(X, device=args.device)
        dtypes = ["float64", "float32"] if n <= 12000 else ["float32"]
        for dtype in dtypes:
            t_dtype = getattr(torch, dtype)
            baseline = None
            if args.baselines:
                rows = [("plain autograd d×d", "features")]
                if n <= 2000:
                    rows.insert(0, ("published n×n", "items"))
                for name, side in rows:
                    seconds = timed(lambda: autograd_weights(X, side=side, dtype=t_dtype, device=args.device), 1)
                    baseline = baseline or seconds
                    print(f"| {name:<22} | {n:>9,} | {d:>4} | {dtype:<7} | {seconds:>9.2f} | {baseline / seconds:>7.1f}x | {source}")
            seconds = timed(lambda: optimise_weights(X_in, gamma=0.8, device=args.device, dtype=dtype), args.repeats)
            ratio = f"{baseline / seconds:>7.1f}x" if baseline else f"{'-':>8}"
            print(f"| {'divweights':<22} | {n:>9,} | {d:>4} | {dtype:<7} | {seconds:>9.2f} | {ratio} | {source}", flush=True)


if __name__ == "__main__":
    main()
