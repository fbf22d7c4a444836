"""`python -m core suggest-gamma FEATURES.npy [--min-ess 0.25] [--max-ratio 50]`: the largest γ whose
diversity weights keep the effective sample size and/or the largest weight in bounds, and the table
of every γ it looked at (core.diversity.suggest)."""

from __future__ import annotations

from .common import ProgressBar, UserError, user_path, workbench
from .weights import add_constraint_arguments, add_engine_arguments, auto_constraint, engine_config, load_features
from ..data.storage import atomic_save_npy
from ..devices import resolve_device


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("suggest-gamma", help="suggest γ: the largest whose weights stay healthy")
    parser.add_argument("features", help="(n, d) float or uint8 .npy")
    add_constraint_arguments(parser)
    add_engine_arguments(parser)
    parser.add_argument("--out", help="also write the chosen γ's probabilities (float64 .npy)")
    parser.set_defaults(func=run)


def print_curve(curve: list[dict], chosen: float) -> None:
    print(f"{'gamma':>7} {'ESS':>9} {'ESS %':>7} {'max x':>9} {'VS':>9} {'meets':>6}  source")
    for row in curve:
        mark = "  <- chosen" if row["gamma"] == chosen else ""
        print(f"{row['gamma']:>7.4f} {row['ess']:>9.1f} {100 * row['ess_fraction']:>7.1f} {row['max_relative']:>9.2f} "
              f"{row['vs']:>9.4f} {'yes' if row['meets'] else 'no':>6}  {row['source']}{mark}", flush=True)


def run(args) -> int:
    import numpy as np

    features = load_features(args.features)
    out = None if args.out is None else user_path(args.out)
    min_ess, max_ratio = auto_constraint(args)
    config = engine_config(args)
    resolve_device(args.device)
    bar = ProgressBar()
    try:
        found = workbench().suggest_gamma(features, min_ess, max_ratio, config, on_progress=bar)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    finally:
        bar.close()
    print_curve(found.curve, found.gamma)
    wanted = " and ".join(filter(None, [min_ess and f"ESS ≥ {100 * min_ess:g}% of n",
                                        max_ratio and f"largest weight ≤ {max_ratio:g}× uniform"]))
    print(f"suggested gamma {found.gamma:.4f} ({wanted}; {found.runs} runs computed, the rest cached)")
    if out is not None:
        atomic_save_npy(out, found.result.p.astype(np.float64))
    return 0
