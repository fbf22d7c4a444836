"""What γ does under each objective: ESS/n and the weighted Vendi Score over γ = 0…1, for the published
objective (γ·VS + (1-γ)·H) and the scale-free one (γ·log VS + (1-γ)·H), on three feature spaces, and the
γ Suggest γ picks for each (ESS ≥ 25% of n).

    python benchmarks/bench_objective.py [--n 2000] [--quick]

Feature spaces: digits pixels (scikit-learn's bundled 8×8 digits, all classes), Fashion-MNIST pixels
(classes 0 and 1, n/2 each; Debian's dataset-fashion-mnist; skipped when absent), and random-weight
open_clip ViT-B-32 features of the same Fashion-MNIST images (no download: the architecture's real
cost and geometry, not a trained model's). Not a speed benchmark: the figures do not depend on load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.diversity.inspect import effective_sample_size  # noqa: E402
from core.diversity.suggest import suggest_gamma  # noqa: E402
from core.diversity.weights import OBJECTIVES, WeightsConfig, sweep  # noqa: E402

GAMMAS = (0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0)


def feature_spaces(n: int, quick: bool):
    from sklearn.datasets import load_digits

    yield "digits pixels", load_digits().data.astype(np.float64)
    try:
        from core.data.datasets import load_dataset

        fashion = load_dataset("fashion-mnist", classes=(0, 1), per_class=n // 2, seed=0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"(Fashion-MNIST skipped: {exc})", file=sys.stderr)
        return
    yield "Fashion-MNIST 0/1 pixels", fashion.images.reshape(len(fashion), -1).astype(np.float64) / 255.0
    if not quick:
        from core.data.embed import embed

        print("(embedding with a random-weight ViT-B-32 on the CPU: a few minutes)", file=sys.stderr)
        yield "Fashion-MNIST 0/1 ViT-B-32 (random)", embed(fashion, "ViT-B-32", "none").astype(np.float64)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="Fashion-MNIST images (two classes, half each)")
    parser.add_argument("--quick", action="store_true", help="skip the ViT-B-32 features")
    args = parser.parse_args()
    head = f"{'features':<36} {'objective':<11} {'n':>5} {'VS(unif)':>8}  " + "  ".join(f"γ={g:<4g}" for g in GAMMAS)
    print(head + "   suggested γ")
    for name, features in feature_spaces(args.n, args.quick):
        n = len(features)
        for objective in OBJECTIVES:
            config = WeightsConfig(objective=objective)
            results = sweep(features, [g for g in GAMMAS if g > 0], config)
            ess = [1.0] + [effective_sample_size(results[g].p) / n for g in GAMMAS if g > 0]
            vs = [results[GAMMAS[1]].vs_uniform] + [results[g].vs_final for g in GAMMAS if g > 0]
            found = suggest_gamma(features, 0.25, None, config)
            print(f"{name:<36} {objective:<11} {n:>5} {vs[0]:>8.2f}  " + "  ".join(f"{e:>6.2f}" for e in ess)
                  + f"   {found.gamma:.3f}  (ESS/n)")
            print(f"{'':<36} {'':<11} {'':>5} {'':>8}  " + "  ".join(f"{v:>6.2f}" for v in vs) + "   (VS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
