"""Milliseconds per training step of both model families: the WGAN-GP's generator step (5 critic
steps + 1 generator step, core.training.trainer) and the flow model's optimiser step
(core.training.flow_trainer, one U-Net forward/backward).

    python benchmarks/bench_train.py                       # CPU, small batches, both models
    python benchmarks/bench_train.py --models flow         # one model only
    python benchmarks/bench_train.py --device cuda         # paper preset (batch 6,000), eager/bf16/compile
    python benchmarks/bench_train.py --device cuda --batch-sizes 6000,1000 --steps 30

Target (issue 6): the paper preset on an H100 at <= 30 ms per generator step (a straightforward
eager fp32 loop measures 225 ms). Images are random 28x28x1 bytes: speed does not depend on content.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def measure(config, images, warmup: int, steps: int) -> float:
    """ms per generator step after `warmup` steps (compilation, cuDNN autotuning)."""
    import torch

    from core.training.execution import make_trainer

    trainer = make_trainer(config, images, None)
    for _ in range(warmup):
        trainer.train_step()
    synchronise = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)
    synchronise()
    start = time.perf_counter()
    for _ in range(steps):
        losses = trainer.train_step()
    float(next(iter(losses.values())))  # one host sync, like logging does
    synchronise()
    return 1000 * (time.perf_counter() - start) / steps


def variants(device: str) -> list[tuple[str, dict]]:
    if device == "cpu":
        return [("eager fp32", {})]
    return [("eager fp32 (TF32 off)", {"tf32": False, "channels_last": False}),
            ("eager TF32 channels-last", {}),
            ("bf16 autocast", {"bf16": True}),
            ("bf16 + compile", {"bf16": True, "compile": True})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default=None, help="paper (default on cuda) or quick (default on cpu)")
    parser.add_argument("--batch-sizes", default=None, help="comma-separated (default: 6000 on cuda, 16,64 on cpu)")
    parser.add_argument("--size", type=int, default=28, help="image side (28: the paper's nets)")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--n-images", type=int, default=12000, help="dataset size (the paper's class pairs: 12,000)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20 cuda, 5 cpu)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10 cuda, 1 cpu)")
    parser.add_argument("--variants", default=None, help="comma-separated indices of the variants to run")
    parser.add_argument("--models", default="wgan-gp,flow", help="comma-separated model families (default both)")
    args = parser.parse_args()

    from core.devices import resolve_device
    from core.training.config import TrainConfig

    device = resolve_device(args.device).partition(":")[0]
    cuda = device == "cuda"
    preset = args.preset or ("paper" if cuda else "quick")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    steps, warmup = args.steps or (20 if cuda else 5), args.warmup if args.warmup is not None else (10 if cuda else 1)
    images = np.random.default_rng(0).integers(0, 256, (args.n_images, args.size, args.size, args.channels), dtype=np.uint8)
    chosen = variants(device)
    if args.variants:
        chosen = [chosen[int(i)] for i in args.variants.split(",")]

    print(f"device {device}  preset {preset}  images {args.n_images}x{args.size}x{args.size}x{args.channels}  "
          f"timed {steps} steps after {warmup} warm-up")
    print(f"{'model':<9}{'variant':<28}{'batch':>8}{'ms/step':>12}{'min/preset run':>16}")
    for model in models:
        run_steps = TrainConfig.preset(preset, model=model).steps
        default_batches = str(TrainConfig.preset(preset, model=model).batch_size) if cuda else "16,64"
        for name, overrides in chosen:
            for batch in [int(b) for b in (args.batch_sizes or default_batches).split(",")]:
                config = TrainConfig.preset(preset, model=model, batch_size=batch, device=device, **overrides)
                ms = measure(config, images, warmup, steps)
                print(f"{model:<9}{name:<28}{batch:>8}{ms:>12.1f}{ms * run_steps / 60000:>16.1f}", flush=True)


if __name__ == "__main__":
    main()
