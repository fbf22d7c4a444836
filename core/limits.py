"""The documented ranges of a request from the web page, checked before any work starts.

The studio's workbench (confined to the data root) enforces `RequestLimits`; the command line is the
machine's own user and has none beyond each config's own validity. Change a limit by constructing the
studio's workbench with other values (`Workbench(root, limits=RequestLimits(max_weight_steps=...))`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RequestLimits:
    max_weight_steps: int = 10_000  # Algorithm 1 steps per weights request
    # the work of one weights, sweep or Suggest-γ request, so that no page holds the shared slot for
    # minutes (Suggest γ at 10,000 steps on 120 images took 7.5 min: 4 runs of 10,000 steps)
    max_weight_total_steps: int = 10_000  # Algorithm-1 steps over all the request's runs (steps × runs)
    max_weight_work: float = 5e9  # steps × runs × images × feature width (3,200 steps on 2,000 × 768)
    max_gammas: int = 32  # γ values per sweep
    max_learning_rate: float = 10.0  # Adam learning rate of the weights (above 0)
    max_train_steps: int = 1_000_000  # generator steps per training run
    max_train_batch: int = 65_536  # images per training batch
    max_eval_samples: int = 100_000  # generated samples per evaluated run
    max_kid_subsets: int = 1_000  # KID subsets
    max_map_points: int = 100_000  # dots drawn on the map
    max_shown: int = 100  # images in one top/bottom gallery
    max_batch_size: int = 1_000_000  # the batch size in the Inspect numbers and the sampler snippet
    max_export_draws: int = 500_000  # image files one trainer export writes (kohya repeats, resampled draws)


def check_work(limits: RequestLimits, steps: int, runs: int, n: int, d: int) -> None:
    """One sentence when `runs` runs of `steps` Algorithm-1 steps on (n, d) features exceed the limits."""
    total, work = steps * runs, float(steps) * runs * n * d
    if total > limits.max_weight_total_steps or work > limits.max_weight_work:
        fits = int(min(limits.max_weight_total_steps / runs, limits.max_weight_work / (runs * n * d)))
        raise ValueError(
            f"this request is too much work for the shared studio: {runs} run(s) of {steps:,} steps on {n:,} images "
            f"× {d:,} features (limits: {limits.max_weight_total_steps:,} steps over all runs and "
            f"{limits.max_weight_work:.3g} step·image·feature units). Use at most {max(fits, 0):,} steps, fewer γ "
            "values or images, or the command line (`python -m core weights`), which has no such limit")


def check_range(name: str, value, low, high) -> None:
    """One sentence when `value` is outside [low, high] (or not a number)."""
    try:
        ok = low <= value <= high
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be between {low:,} and {high:,} (got {value!r})")
