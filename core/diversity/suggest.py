"""An automatic γ (the paper's future work) and a health check of a set of weights.

`suggest_gamma` finds the largest γ on a fixed grid (GRID: 0, 0.05, …, 0.5, then 0.6, …, 1.0; every
point is a step of the studio's γ slider and the paper's 0.2, 0.4, …, 1.0 are on it) whose diversity weights keep the effective sample size ≥ min_ess_fraction · n and/or the
largest weight ≤ max_weight_ratio × the uniform share. It runs the engine of Algorithm 1 itself
(`core.diversity.weights.sweep`, cached on disk), never a copy of it:

1. every grid γ already in the cache is read first (free): a coarse curve of what is known;
2. bisection on the grid between the largest known γ that meets the constraint (γ = 0, uniform,
   always does) and the smallest that does not, one γ per round.

ESS and the largest weight fall as γ grows, so bisection finds the largest grid γ that meets the
constraint exactly, and a stricter constraint never gets a larger γ. The grid is finer below 0.5,
where peaked data (pixels, near-duplicates) needs its γ. Cost: at most ⌈log2(16)⌉ = 4 runs of Algorithm 1 (a batched sweep of k γ costs about k runs, so evaluating points
one at a time is what keeps the count down); fewer when the cache already holds grid points.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .inspect import expected_repeats, weight_summary
from .vendi import vendi_score
from .weights import WeightsConfig, WeightsResult, cached_results, sweep
from ..jobs import JobStopped

GRID = tuple(j / 20 for j in range(11)) + (0.6, 0.7, 0.8, 0.9, 1.0)  # 16 candidates: 4 bisection rounds
MAX_RUNS = 4  # ⌈log2(len(GRID))⌉: the most Algorithm-1 runs of one search (the studio's work limit counts them)
HEALTHY_ESS_FRACTION = 0.10  # below this the weights warn (the "ESS < 10% of n")
HEALTHY_REPEAT_FRACTION = 1 / 3  # ... or when over a third of a batch repeats images already in it (and 3× uniform)


@dataclass
class GammaSuggestion:
    gamma: float  # the largest grid γ that meets the constraint
    result: WeightsResult  # its weights
    curve: list[dict]  # every γ known, ascending: gamma, ess, ess_fraction, max_relative, vs, meets, source
    runs: int  # γ values computed now (the rest came from the cache)
    min_ess_fraction: float | None
    max_weight_ratio: float | None
    extra: dict = field(default_factory=dict)


def check_constraint(min_ess_fraction: float | None, max_weight_ratio: float | None) -> None:
    if min_ess_fraction is None and max_weight_ratio is None:
        raise ValueError("give a minimum effective sample size (fraction of n) and/or a maximum weight ratio")
    if min_ess_fraction is not None and not 0.0 < min_ess_fraction <= 1.0:
        raise ValueError(f"the minimum ESS fraction must be in (0, 1]; got {min_ess_fraction}")
    if max_weight_ratio is not None and not max_weight_ratio >= 1.0:
        raise ValueError(f"the maximum weight ratio (× uniform) must be ≥ 1; got {max_weight_ratio}")


def curve_row(gamma: float, p: np.ndarray, vs: float, source: str, min_ess_fraction, max_weight_ratio) -> dict:
    """One point of the searched curve and whether it meets the constraint."""
    n = p.size
    ess = float(1.0 / np.sum(p * p))
    max_relative = float(p.max() * n)
    meets = ((min_ess_fraction is None or ess >= min_ess_fraction * n - 1e-9)
             and (max_weight_ratio is None or max_relative <= max_weight_ratio + 1e-9))
    return {"gamma": gamma, "ess": ess, "ess_fraction": ess / n, "max_relative": max_relative, "vs": vs,
            "meets": bool(meets), "source": source}


def uniform_result(features, config: WeightsConfig, vs: float | None = None) -> WeightsResult:
    """γ = 0: Algorithm 1's gradient vanishes at uniform p, so its weights are uniform without a run.
    vs: the uniform Vendi Score when known (every run reports it as vs_uniform)."""
    n = len(features)
    vs = vendi_score(features) if vs is None else float(vs)
    return WeightsResult(p=np.full(n, 1.0 / n), log_weights=np.zeros(n), history=[],
                         config=replace(config, gamma=0.0), vs_uniform=vs, vs_final=vs,
                         extra={"uniform": True})


def suggest_gamma(features, min_ess_fraction: float | None = 0.25, max_weight_ratio: float | None = None,
                  config: WeightsConfig = WeightsConfig(), cache_dir=None, grid=GRID,
                  on_step=None, on_round=None, should_stop=None) -> GammaSuggestion:
    """The largest γ of `grid` (ascending, starting at 0) whose weights meet the constraint (module docstring).

    features (n, d) as for `optimise_weights`; config: every setting but γ; cache_dir: the weights cache
    shared with `sweep`. on_step(row): each Algorithm-1 step; on_round(curve_row): each γ evaluated.
    should_stop() -> True raises JobStopped (nothing half-made is cached)."""
    check_constraint(min_ess_fraction, max_weight_ratio)
    gammas = [float(g) for g in grid]
    if len(gammas) < 2 or gammas[0] != 0.0 or gammas != sorted(set(gammas)) or gammas[-1] > 1.0:
        raise ValueError("the γ grid must ascend from 0 to at most 1 without repeats")
    results = cached_results(features, gammas[1:], config, cache_dir)
    rows = {g: _row(g, r, "cache", min_ess_fraction, max_weight_ratio) for g, r in results.items()}
    rows[0.0] = {"meets": True}  # uniform p: ESS = n, every weight 1× (its full row is filled in below)
    lo, hi = _bracket(gammas, rows)
    runs = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        gamma = gammas[mid]
        result = sweep(features, [gamma], config, cache_dir, on_step, should_stop)[gamma]
        if result.stopped:
            raise JobStopped("the γ search was stopped")
        results[gamma], runs = result, runs + int(not result.extra.get("cache_hit", False))
        rows[gamma] = _row(gamma, result, "computed", min_ess_fraction, max_weight_ratio)
        if on_round is not None:
            on_round(rows[gamma])
        lo, hi = (mid, hi) if rows[gamma]["meets"] else (lo, mid)
    known_vs = next((r.vs_uniform for r in results.values()), None)  # no extra eigendecomposition
    results[0.0] = uniform_result(features, config, known_vs)
    rows[0.0] = _row(0.0, results[0.0], "uniform", min_ess_fraction, max_weight_ratio)
    best = gammas[lo]
    return GammaSuggestion(best, results[best], [rows[g] for g in sorted(rows)], runs, min_ess_fraction,
                           max_weight_ratio)


def _row(gamma, result: WeightsResult, source, min_ess_fraction, max_weight_ratio) -> dict:
    return curve_row(gamma, np.asarray(result.p), float(result.vs_final), source, min_ess_fraction, max_weight_ratio)


def _bracket(gammas, rows) -> tuple[int, int]:
    """Grid indices (lo, hi): lo meets the constraint, hi is the smallest known failure (len = none)."""
    fails = [j for j, g in enumerate(gammas) if g in rows and not rows[g]["meets"]]
    hi = min(fails) if fails else len(gammas)
    lo = max(j for j, g in enumerate(gammas[:hi]) if g in rows and rows[g]["meets"])
    return lo, hi


# ----------------------------------------------------------------------------- weight health

@dataclass
class WeightHealth:
    healthy: bool
    ess: float
    ess_fraction: float
    expected_repeats: float  # draws of a batch of `batch_size` that repeat an image already in it
    batch_size: int
    message: str  # empty when healthy; else what it means for training, for people


def weight_health(p: np.ndarray, batch_size: int = 64, suggested_gamma: float | None = None) -> WeightHealth:
    """Whether training on p would keep drawing the same few images (Berns et al.: "batches can
    become saturated with the highest-weighted training examples")."""
    summary = weight_summary(p, batch_size)
    n, ess, repeats = summary["n"], summary["ess"], summary["expected_repeats"]
    uniform_repeats = expected_repeats(np.full(n, 1.0 / n), batch_size)
    few = summary["ess_fraction"] < HEALTHY_ESS_FRACTION
    crowded = repeats > max(HEALTHY_REPEAT_FRACTION * batch_size, 3 * uniform_repeats)
    if not (few or crowded):
        return WeightHealth(True, ess, summary["ess_fraction"], repeats, batch_size, "")
    advice = (f"Try γ = {suggested_gamma:.2f} (the suggested γ)" if suggested_gamma is not None
              else "Press **Suggest γ** (Weights tab) for the largest γ that avoids this")
    message = (f"These weights are worth only {ess:,.0f} of {n:,} images (effective sample size "
               f"{100 * summary['ess_fraction']:.1f}%); the largest weight is {summary['max_relative']:,.0f}× the "
               f"uniform share. A batch of {batch_size} would repeat about {repeats:.0f} draws of images already in "
               f"it, so a training run would show the generator the same few images over and over (\"batches can "
               f"become saturated with the highest-weighted training examples\"). {advice}, or lower γ.")
    return WeightHealth(False, ess, summary["ess_fraction"], repeats, batch_size, message)
