"""How the studio's Map tab scales: UMAP layout, display sampling, figure build and payload size.

    python benchmarks/bench_studio_map.py [--n 2000 20000 70000] [--dim 64]

Synthetic clustered features stand in for embeddings; images are 28×28 random greys (they compress
worse than real images, so the payload is an upper bound). Only the drawn sample is laid out.
Prints one row per n. Goal: 70,000 points stay usable (first map < 30 s after warm-up, redraws < 2 s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data import projection  # noqa: E402
from divweights_ui import figures  # noqa: E402
from divweights_ui.common import _thumb_b64  # noqa: E402
from divweights_ui.map_handlers import map_sample  # noqa: E402
from divweights_ui.session import Session  # noqa: E402


def synthetic(n: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, dim)) * 3
    labels = rng.integers(0, 10, size=n)
    features = (centres[labels] + rng.normal(size=(n, dim))).astype(np.float32)
    images = rng.integers(0, 255, size=(n, 28, 28, 1), dtype=np.uint8)
    p = rng.dirichlet(np.ones(n))
    return features, labels, images, p


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[2000, 20000, 70000])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--max-points", type=int, default=3000)
    args = parser.parse_args()
    _, warm_s = timed(projection.warmup)
    print(f"UMAP warm-up (numba compile, once per process): {warm_s:.1f} s")
    print(f"{'n':>7} {'drawn':>6} {'UMAP s':>7} {'cached s':>9} {'thumbs s':>9} {'figure s':>9} {'JSON MB':>8}")
    for n in args.n:
        features, labels, images, p = synthetic(n, args.dim)
        indices = map_sample(n, args.max_points)
        with tempfile.TemporaryDirectory() as cache:
            (coords, _), fit_s = timed(lambda: projection.project(features[indices], cache_dir=cache))
            _, cached_s = timed(lambda: projection.project(features[indices], cache_dir=cache))
        session = Session()
        session.dataset = type("D", (), {"images": images})()
        thumbs, thumbs_s = timed(lambda: [_thumb_b64(session, int(i)) for i in indices])
        fig, fig_s = timed(lambda: figures.map_figure(coords, indices, p[indices] * n,
                                                      [str(labels[i]) for i in indices], thumbs, "umap", n))
        size_mb = len(fig.to_json()) / 1e6
        print(f"{n:>7} {len(indices):>6} {fit_s:>7.1f} {cached_s:>9.3f} {thumbs_s:>9.2f} {fig_s:>9.2f} {size_mb:>8.2f}")


if __name__ == "__main__":
    main()
