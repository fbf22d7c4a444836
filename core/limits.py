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


def check_range(name: str, value, low, high) -> None:
    """One sentence when `value` is outside [low, high] (or not a number)."""
    try:
        ok = low <= value <= high
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must be between {low:,} and {high:,} (got {value!r})")
