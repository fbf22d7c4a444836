"""What sharding Algorithm 1 over torch.distributed costs, and what it buys at 10⁸ rows.

For each (n, d) (random non-negative float32 features, dtype float32 engine) it times the per-step work
two ways on this machine, with the same two cores:
- 1 process × 2 threads: the one-process engine (`core.diversity.weights`) on all n rows;
- 2 processes × 1 thread: `torchrun`-style ranks on gloo (spawned here), each with n / 2 rows
  (`ShardRows`); a rank generates only its own rows, so no process ever holds all of them.
and prints median ms per step, the ratio (target ≤ 1.2×: the communication overhead), peak resident
memory per process (ru_maxrss, torch's own ~0.3 GB included) next to the engine's arrays per rank.

Then a projection for 10⁸ rows on 8 and 64 GPUs. Per step and rank: rows-work ∝ n / GPUs (scaled from
a measured single-GPU step at n = 10⁶, d = 768, where a GPU is here, else from --gpu-step-ms), plus
the r×r eigendecomposition (every rank, not divided: measured with the GPU step, else --eigh-ms), plus
four all-reduces: one of k·r² floats (ring: 2 (W−1)/W · bytes / bandwidth) and three of a few floats
(latency-bound, --latency-us each, ×2 log₂W hops). Bandwidths are assumptions, printed with the table.

    python benchmarks/bench_distributed.py --quick          # a smoke run (small n): checks the script
    python benchmarks/bench_distributed.py                  # n = 10⁵ and 10⁶, d = 256 and 768
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BLOCK = 50_000  # features are generated in seeded blocks: any process can make any rows alone


def feature_rows(start: int, stop: int, d: int) -> np.ndarray:
    """Rows [start, stop) of the benchmark's (n, d) float32 features, the same whoever makes them."""
    parts = []
    for block in range(start // BLOCK, (stop - 1) // BLOCK + 1):
        rows = np.random.default_rng([block, d]).random((BLOCK, d), dtype=np.float32)
        lo, hi = max(start - block * BLOCK, 0), min(stop - block * BLOCK, BLOCK)
        parts.append(rows[lo:hi])
    return np.concatenate(parts)


def time_steps(features, steps: int, shards=None) -> tuple[list[float], int]:
    """Seconds between the `steps` Algorithm-1 steps (float32 engine; after the rank reduction) and r."""
    from core.diversity.weights import LOCAL_ROWS, WeightsConfig, _optimise_batch, _prepare

    rows = shards or LOCAL_ROWS
    F = _prepare(features, "float32", "cpu") if shards is None else shards.prepare(features, "float32", "cpu")
    stamps = []
    _optimise_batch(F, [0.8], WeightsConfig(steps=steps, dtype="float32"), on_step=lambda row: stamps.append(time.perf_counter()),
                    rows=rows)
    return np.diff(stamps).tolist(), F.shape[1]


def engine_bytes(n_rows: int, r: int, k: int = 1, itemsize: int = 4) -> int:
    """F and its work array (n, r), w and Adam's two moments (k, n), the Gram matrices (k, r, r)."""
    return itemsize * (2 * n_rows * r + 3 * k * n_rows + k * r * r)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def one_main(_, n: int, d: int, steps: int, out: str) -> None:
    """The one-process run, in a fresh process of its own (so its peak memory is its own)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(2)
    with threadpool_limits(2):
        times, r = time_steps(feature_rows(0, n, d), steps)
    np.save(Path(out) / "one.npy", np.array([1e3 * statistics.median(times), peak_rss_gb(), engine_bytes(n, r) / 2**30, r]))


def one_process(n: int, d: int, steps: int) -> dict:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as out:
        mp.spawn(one_main, args=(n, d, steps, out), nprocs=1, join=True)
        ms, rss, arrays, r = np.load(Path(out) / "one.npy")
    return {"ms": ms, "rss": rss, "arrays": arrays, "r": int(r)}


def rank_main(rank: int, world: int, n: int, d: int, steps: int, port: int, out: str) -> None:
    """One rank of the sharded run (spawned by torch.multiprocessing): times its steps, reports."""
    import torch
    import torch.distributed as dist
    from threadpoolctl import threadpool_limits

    from core.diversity.distributed import ShardRows

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        with threadpool_limits(1):
            rows = n * rank // world, n * (rank + 1) // world
            times, r = time_steps(feature_rows(*rows, d), steps, ShardRows())
        np.save(Path(out) / f"rank{rank}.npy", np.array([1e3 * statistics.median(times), peak_rss_gb(),
                                                         engine_bytes(rows[1] - rows[0], r) / 2**30, r]))
    finally:
        dist.destroy_process_group()


def sharded(n: int, d: int, steps: int, world: int = 2) -> dict:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:  # a free loopback port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(rank_main, args=(world, n, d, steps, port, out), nprocs=world, join=True)
        ranks = [np.load(Path(out) / f"rank{r}.npy") for r in range(world)]
    return {"ms": max(x[0] for x in ranks), "rss": max(x[1] for x in ranks), "arrays": max(x[2] for x in ranks)}


def gpu_step(steps: int) -> tuple[float, float] | None:
    """(ms per step, ms of the r×r eigh) on one GPU at n = 10⁶, d = 768, float32; None without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return None
    from core.diversity.weights import WeightsConfig, _optimise_batch, _prepare

    X = torch.rand(1_000_000, 768, device="cuda")
    F = _prepare(X, "float32", "cuda")
    del X
    stamps = []

    def stamp(row):
        torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    _optimise_batch(F, [0.8], WeightsConfig(steps=steps, dtype="float32"), on_step=stamp)
    G = F.T @ F / len(F)
    torch.linalg.eigh(G)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(5):
        torch.linalg.eigh(G)
    torch.cuda.synchronize()
    return 1e3 * statistics.median(np.diff(stamps)), 1e3 * (time.perf_counter() - start) / 5


def cpu_eigh_ms(d: int = 768) -> float:
    """ms of one d×d float32 eigh on one core of this machine (what every rank repeats per step)."""
    from threadpoolctl import threadpool_limits

    G = np.cov(np.random.default_rng(0).random((4 * d, d), dtype=np.float32), rowvar=False).astype(np.float32)
    with threadpool_limits(1):
        np.linalg.eigh(G)
        started = time.perf_counter()
        for _ in range(3):
            np.linalg.eigh(G)
    return 1e3 * (time.perf_counter() - started) / 3


def projection(step_ms: float, eigh_ms: float, args, n: int = 10**8, d: int = 768,
               rows_measured: int = 10**6) -> list[tuple]:
    """Projected ms per step at n rows on W ranks from one rank's measured step over rows_measured rows."""
    gram_bytes = 4 * d * d  # k = 1, r = d, float32
    rows_ms = (step_ms - eigh_ms) / rows_measured  # the part that scales with rows, per row
    out = []
    for gpus, bandwidth in ((8, args.nvlink_gbs), (64, args.network_gbs)):
        ring = 2 * (gpus - 1) / gpus * gram_bytes / (bandwidth * 1e9) * 1e3
        small = 3 * 2 * np.log2(gpus) * args.latency_us / 1e3  # three latency-bound all-reduces
        compute = rows_ms * n / gpus
        total = compute + eigh_ms + ring + small
        out.append((gpus, bandwidth, compute, eigh_ms, ring + small, total, 100 * total / 1e3))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 20,000, d = 64 and 256, 5 steps: a smoke run")
    parser.add_argument("--steps", type=int, default=8, help="steps timed (the first is not counted)")
    parser.add_argument("--gpu-step-ms", type=float, default=None,
                        help="single-GPU ms per step at n = 10⁶, d = 768 when no GPU is here (required for the projection then)")
    parser.add_argument("--eigh-ms", type=float, default=None, help="ms of a 768×768 float32 eigh on that GPU")
    parser.add_argument("--nvlink-gbs", type=float, default=150.0, help="assumed all-reduce bus bandwidth within a node, GB/s")
    parser.add_argument("--network-gbs", type=float, default=25.0, help="assumed across nodes (200 Gb/s InfiniBand), GB/s")
    parser.add_argument("--latency-us", type=float, default=20.0, help="assumed latency of one all-reduce hop, µs")
    args = parser.parse_args()
    sizes = [(20_000, 64), (20_000, 256)] if args.quick else [(10**5, 256), (10**5, 768), (10**6, 256), (10**6, 768)]
    steps = 5 if args.quick else args.steps
    print(f"{'n':>9} {'d':>4} {'r':>4} | {'1p×2t ms':>9} {'2p×1t ms':>9} {'ratio':>6} | "
          f"{'RSS 1p GB':>9} {'RSS/rank GB':>11} {'arrays/rank GB':>14}")
    for n, d in sizes:
        one, two = one_process(n, d, steps), sharded(n, d, steps)
        last = (n, d, two["ms"])
        print(f"{n:>9,} {d:>4} {one['r']:>4} | {one['ms']:>9.1f} {two['ms']:>9.1f} {two['ms'] / one['ms']:>6.2f} | "
              f"{one['rss']:>9.2f} {two['rss']:>11.2f} {two['arrays']:>14.3f}", flush=True)
    measured = gpu_step(steps)
    step_ms, eigh_ms = measured if measured else (args.gpu_step_ms, args.eigh_ms)
    if step_ms is None:
        # no GPU figures: project ranks like this machine's (one core each) from the measured sharded step
        n, d, rank_ms = last
        eigh = cpu_eigh_ms(d)
        print(f"\nno CUDA GPU here (pass --gpu-step-ms / --eigh-ms measured on one for a GPU projection).\n"
              f"projection, n = 10⁸, d = r = {d}, float32, k = 1, for ranks of this machine's speed (one core each):"
              f" measured {rank_ms:.0f} ms a step for {n // 2:,} rows a rank, eigh {eigh:.0f} ms on one core")
        print("assumes: rows-work scales as n / ranks; every rank repeats the eigh; ring all-reduce of the "
              f"{d}² Gram at the bandwidths below; three tiny all-reduces latency-bound")
        _print_projection(projection(rank_ms, eigh, args, d=d, rows_measured=n // 2))
        return
    source = "measured on this GPU" if measured else "given with --gpu-step-ms / --eigh-ms"
    print(f"\nprojection, n = 10⁸, d = r = 768, float32, k = 1: single-GPU step at 10⁶ rows {step_ms:.1f} ms, "
          f"eigh {eigh_ms if eigh_ms is not None else 0:.1f} ms ({source})")
    print("assumes: rows-work scales as n / GPUs, same GPU type; every rank repeats the eigh; "
          "ring all-reduce of the 768² Gram; three tiny all-reduces latency-bound")
    _print_projection(projection(step_ms, eigh_ms or 0.0, args))


def _print_projection(rows: list[tuple]) -> None:
    print(f"{'ranks':>5} {'GB/s':>6} {'rows ms':>8} {'eigh ms':>8} {'comm ms':>8} {'step ms':>8} {'100 steps s':>11}")
    for row in rows:
        print(f"{row[0]:>5} {row[1]:>6.0f} {row[2]:>8.1f} {row[3]:>8.1f} {row[4]:>8.2f} {row[5]:>8.1f} {row[6]:>11.1f}")


if __name__ == "__main__":
    main()
