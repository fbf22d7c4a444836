"""The Learn tab's live speed and the cost of an automatic γ.

1. Steps per second of the toy mixture in the Learn tab (n = 500 points, RBF kernel through random
   Fourier features): Algorithm 1 alone (core.diversity.playground.Stepper) and with the frames the
   tab streams (divweights_ui.learn_tab.mixture_frames: a plotly scatter and the numbers per frame).
2. `suggest_gamma` (no cache) against one `optimise_weights` run on the same features: the issue
   asks for at most 4×. Data: Fashion-MNIST T-shirt/Trouser pixels when Debian's files are present,
   else random non-negative features of the same shape.

    python benchmarks/bench_learn.py            # n = 500 mixture, n = 2,000 for the γ search
    python benchmarks/bench_learn.py --quick    # smoke size: seconds
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.diversity import playground as pg  # noqa: E402
from core.diversity.suggest import suggest_gamma  # noqa: E402
from core.diversity.weights import WeightsConfig, optimise_weights  # noqa: E402


def stepper_rate(n: int, steps: int) -> float:
    points, _ = pg.toy_mixture(pg.MixtureConfig(n=n))
    stepper = pg.Stepper(pg.random_fourier_features(points, 0.5), WeightsConfig(gamma=0.8, steps=steps))
    started = time.perf_counter()
    stepper.step(steps)
    return steps / (time.perf_counter() - started)


def tab_rate(n: int) -> tuple[float, int]:
    """Steps/s of the Learn tab's own generator, frames built (no browser): (rate, frames)."""
    from divweights_ui.learn_tab import mixture_frames

    started, frames = time.perf_counter(), 0
    for frames, _ in enumerate(mixture_frames(2, 0.9, 0.35, n, 0.8, 1.0, 0.5, 0, pause_s=0.0), start=1):
        pass
    return WeightsConfig().steps / (time.perf_counter() - started), frames


def features_for_search(n: int) -> tuple[np.ndarray, str]:
    try:
        from core.data.datasets import load_dataset

        data = load_dataset("fashion-mnist", classes=(0, 1), per_class=n // 2, seed=0)
        return data.images.reshape(len(data.images), -1).astype(np.float64) / 255.0, "fashion-mnist 0/1 pixels"
    except Exception:
        return np.random.default_rng(0).random((n, 784)), "random (n, 784)"


def search_cost(n: int, steps: int) -> dict:
    X, source = features_for_search(n)
    config = WeightsConfig(steps=steps)
    started = time.perf_counter()
    one = optimise_weights(X, gamma=0.8, steps=steps)
    t_one = time.perf_counter() - started
    started = time.perf_counter()
    found = suggest_gamma(X, 0.25, config=config)  # no cache: every γ computed
    t_search = time.perf_counter() - started
    return {"source": source, "n": n, "t_one": t_one, "t_search": t_search, "runs": found.runs,
            "gamma": found.gamma, "ess_one": 1 / np.sum(one.p ** 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-size run")
    args = parser.parse_args()
    n_mix, n_search, steps = (200, 300, 30) if args.quick else (500, 2000, 100)
    print(f"{'what':<44} {'value':>12}")
    print(f"{f'Algorithm 1 alone, mixture n={n_mix} (steps/s)':<44} {stepper_rate(n_mix, steps):>12.0f}")
    rate, frames = tab_rate(n_mix)
    print(f"{f'Learn tab with frames, n={n_mix} (steps/s)':<44} {rate:>12.0f}   ({frames} frames per 100 steps)")
    cost = search_cost(n_search, steps)
    print(f"{'one optimise_weights run (s)':<44} {cost['t_one']:>12.2f}   ({cost['source']}, n={cost['n']}, "
          f"γ=0.8 ESS {cost['ess_one']:.0f})")
    print(f"{'suggest_gamma, min ESS 25% (s)':<44} {cost['t_search']:>12.2f}   ({cost['runs']} runs, chose "
          f"γ={cost['gamma']:.3f})")
    print(f"{'suggest_gamma / one run':<44} {cost['t_search'] / cost['t_one']:>12.2f}   (the issue asks ≤ 4)")


if __name__ == "__main__":
    main()
