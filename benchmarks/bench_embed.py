"""Embedding throughput: pixels, preprocessing, open_clip (random weights: the real cost), cache loads.

    .venv/bin/python benchmarks/bench_embed.py                 # CPU, small n
    .venv/bin/python benchmarks/bench_embed.py --device cuda   # adds ViT-L/14 at 224 px on the GPU

Target (issue 4): >= 3,000 images/s for ViT-L/14 at 224 px on an H100.
Random weights cost exactly what trained ones do; no download is needed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.dataset import make_dataset  # noqa: E402
from core.data.embed import EmbedConfig, embed, embed_cached, load_clip, resize_batch  # noqa: E402


def mnist_like(n: int, seed: int = 0):
    """(n, 28, 28, 1) uint8 random strokes on black: MNIST's shape and cost."""
    rng = np.random.default_rng(seed)
    images = (rng.random((n, 28, 28, 1)) < 0.2).astype(np.uint8) * 255
    return make_dataset("bench", images, None, None, [str(i) for i in range(n)], "benchmark")


def timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_clip(model: str, n: int, device: str, batch_size: int | None) -> tuple[float, str]:
    import torch

    dataset = mnist_like(n)
    load_clip(model, None, device)  # model creation is not part of the throughput
    embed(mnist_like(min(n, 64), seed=1), model, "none", device, batch_size)  # warm-up (kernels, autocast)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = timed(lambda: embed(dataset, model, "none", device, batch_size))
    return n / seconds, f"batch {batch_size or 'auto'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--n", type=int, default=None, help="images for open_clip (default 32 CPU, 12000 GPU)")
    parser.add_argument("--models", default=None, help="comma-separated open_clip models "
                        "(default ViT-B-32 on CPU; ViT-B-32,ViT-L-14 on GPU)")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    gpu = args.device.startswith("cuda")
    n_clip = args.n or (12000 if gpu else 32)
    models = (args.models or ("ViT-B-32,ViT-L-14" if gpu else "ViT-B-32")).split(",")

    rows = []
    pixels = mnist_like(60000)
    rows.append(("pixels 28x28", "cpu", 60000, 60000 / timed(lambda: embed(pixels, model="pixels"), 3), ""))
    small = mnist_like(2000)
    rows.append(("resize 28->224 (PIL bicubic)", "cpu", 2000,
                 2000 / timed(lambda: resize_batch(small.images, 224)), "1 thread"))
    for model in models:
        rate, note = bench_clip(model, n_clip, args.device, args.batch_size)
        rows.append((f"open_clip {model} @224", args.device, n_clip, rate, note))
    with tempfile.TemporaryDirectory() as cache_dir:
        features = mnist_like(6000)
        config = EmbedConfig(model="pixels", image_size=28)
        embed_cached(features, config, cache_dir=cache_dir)
        load_s = timed(lambda: embed_cached(features, config, cache_dir=cache_dir), 3)
        rows.append(("cache hit (6000 x 784, checksum)", "disk", 6000, 6000 / load_s, f"{load_s * 1000:.0f} ms"))

    print(f"{'what':<36} {'device':<7} {'n':>7} {'images/s':>11}  note")
    print("-" * 80)
    for what, device, n, rate, note in rows:
        print(f"{what:<36} {device:<7} {n:>7} {rate:>11,.0f}  {note}")


if __name__ == "__main__":
    main()
