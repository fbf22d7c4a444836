"""`python -m core weights FEATURES.npy --gamma 0.8 --out P.npy`: diversity weights (Algorithm 1);
`--scheme uniform|class-balanced|inverse-density|leverage` writes a baseline weighting instead;
`--gamma auto [--min-ess 0.25] [--max-ratio 50]` picks γ first (core.diversity.suggest)."""

from __future__ import annotations

import argparse
from dataclasses import replace

from .common import ProgressBar, UserError, user_path, workbench
from .distributed import run_distributed
from ..data.storage import atomic_save_npy, load_npy
from ..devices import resolve_device
from ..diversity.vendi import normalise_rows
from ..diversity.schemes import SCHEMES, SchemeConfig, scheme_summary
from ..diversity.weights import OBJECTIVES, WeightsConfig


def add_parser(subparsers) -> None:
    defaults = WeightsConfig()
    parser = subparsers.add_parser("weights", help="compute diversity weights for features")
    parser.add_argument("features", help="(n, d) float or uint8 .npy")
    parser.add_argument("--gamma", type=gamma_value, default=defaults.gamma,
                        help="1 = pure diversity, 0 = uniform; auto = the largest γ meeting --min-ess/--max-ratio")
    add_constraint_arguments(parser, "with --gamma auto: ")
    add_engine_arguments(parser)
    parser.add_argument("--distributed", action="store_true",
                        help="under torchrun: each rank takes its slice of the rows (core.cli.distributed)")
    parser.add_argument("--out", required=True, help="where to write the probabilities (float64 .npy)")
    schemes = SchemeConfig()
    parser.add_argument("--scheme", choices=SCHEMES, default=schemes.scheme,
                        help="diversity (Algorithm 1, default) or a baseline to compare against")
    parser.add_argument("--labels", help="(n,) integer .npy of class labels (needed by class-balanced)")
    parser.add_argument("--k", type=int, default=schemes.k, help="inverse-density: neighbours per point")
    parser.add_argument("--ridge", type=float, default=schemes.ridge, help="leverage: λ as a fraction of trace(XᵀX)")
    parser.set_defaults(func=run)


def add_constraint_arguments(parser, context: str = "") -> None:
    """--min-ess / --max-ratio: what an automatic γ must keep (core.diversity.suggest)."""
    parser.add_argument("--min-ess", type=float, default=None,
                        help=f"{context}keep the effective sample size ≥ this fraction of n (default 0.25 "
                             "when no --max-ratio)")
    parser.add_argument("--max-ratio", type=float, default=None,
                        help=f"{context}keep the largest weight ≤ this many times the uniform share")


def add_engine_arguments(parser) -> None:
    """--steps / --lr / --dtype / --device of Algorithm 1 (defaults from WeightsConfig)."""
    defaults = WeightsConfig()
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--dtype", choices=["float64", "float32"], default=defaults.dtype)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when available")
    parser.add_argument("--objective", choices=OBJECTIVES, default=defaults.objective,
                        help="paper: γ·VS + (1-γ)·H (Algorithm 1 as published); scale-free: γ·log VS + (1-γ)·H, "
                             "so γ means the same on any features")


def engine_config(args, gamma: float | None = None) -> WeightsConfig:
    """The WeightsConfig of --steps/--lr/--dtype/--device/--objective (and γ where one is given)."""
    config = WeightsConfig(steps=args.steps, lr=args.lr, dtype=args.dtype, device=getattr(args, "device", None),
                           objective=args.objective)
    return config if gamma is None else replace(config, gamma=gamma)


def gamma_value(text: str):
    """--gamma: a number in [0, 1] or 'auto'."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 or 'auto', got {text!r}") from None


def auto_constraint(args) -> tuple[float | None, float | None]:
    """(min ESS fraction, max weight ratio) of --gamma auto; ESS ≥ 25% of n when neither is given."""
    if args.min_ess is None and args.max_ratio is None:
        return 0.25, None
    return args.min_ess, args.max_ratio


def load_features(path: str):
    """(n, d) numeric array from .npy; a clear error for anything else."""
    import numpy as np

    features = load_npy(user_path(path))
    if features.ndim != 2:
        raise UserError(f"{path}: features must be a 2-D array (n, d); got shape {features.shape}")
    if features.shape[0] < 2:
        raise UserError(f"{path}: need at least 2 items; got {features.shape[0]}")
    normalise_rows(features)  # raises on NaN/inf, zero rows, non-numeric
    return np.asarray(features)


def print_row(row: dict) -> None:
    print(f"{row['step']:>5} {row['vs']:>10.4f} {row['entropy']:>10.4f} {row['ess']:>10.1f}", flush=True)


def run(args) -> int:
    import numpy as np

    if args.distributed:  # no rank loads all rows: each reads its own slice
        return run_distributed(args, print_row)
    features = load_features(args.features)
    out = user_path(args.out)
    if args.gamma == "auto" and args.scheme != "diversity":
        raise UserError("--gamma auto chooses γ for diversity weights; give a number with --scheme")
    if (args.min_ess is not None or args.max_ratio is not None) and args.gamma != "auto":
        raise UserError("--min-ess and --max-ratio go with --gamma auto")
    if args.scheme != "diversity":
        return run_scheme(args, features, out)
    if args.gamma == "auto":
        return run_auto(args, features, out)
    config = engine_config(args, args.gamma)
    resolve_device(args.device)  # a missing GPU is one error line, before the table starts
    print(f"{'step':>5} {'VS':>10} {'entropy':>10} {'ESS':>10}")
    printed = []

    def report(event) -> None:
        if event.done % 10 == 0 or event.done == 1:
            print_row(event.values)
            printed.append(event.done)

    result = workbench().weights(features, config, on_progress=report)
    if not printed:  # from the cache: the same table, from the saved history
        for row in result.history:
            if row["step"] % 10 == 0 or row["step"] == 1:
                print_row(row)
    atomic_save_npy(out, result.p.astype(np.float64))
    print(f"uniform VS {result.vs_uniform:.4f}")
    print(f"final VS {result.vs_final:.4f}")
    return 0


def run_auto(args, features, out) -> int:
    """--gamma auto: core.diversity.suggest picks γ; its weights are written, γ and ESS printed."""
    import numpy as np

    min_ess, max_ratio = auto_constraint(args)
    config = engine_config(args)
    resolve_device(args.device)
    bar = ProgressBar()
    try:
        found = workbench().suggest_gamma(features, min_ess, max_ratio, config, on_progress=bar)
    finally:
        bar.close()
    atomic_save_npy(out, found.result.p.astype(np.float64))
    row = next(r for r in found.curve if r["gamma"] == found.gamma)
    print(f"chosen gamma {found.gamma:.4f}")
    print(f"ESS {row['ess']:.1f} of {len(features)} ({100 * row['ess_fraction']:.1f}%), largest weight "
          f"{row['max_relative']:.2f}x uniform, VS {row['vs']:.4f}")
    return 0


def load_labels(path: str | None, n: int):
    """(n,) labels from .npy, or None; a clear error when they do not match the features."""
    if path is None:
        return None
    labels = load_npy(user_path(path))
    labels = labels.reshape(-1) if labels.ndim == 2 and 1 in labels.shape else labels
    if labels.shape != (n,):
        raise UserError(f"{path}: labels must have shape ({n},) to match the features; got {labels.shape}")
    return labels


def run_scheme(args, features, out) -> int:
    """A baseline scheme (uniform, class-balanced, inverse-density, leverage): p and its summary."""
    import numpy as np

    labels = load_labels(args.labels, len(features))
    if args.scheme == "class-balanced" and labels is None:
        raise UserError("--scheme class-balanced needs --labels LABELS.npy (one class per row of the features)")
    config = SchemeConfig(args.scheme, gamma=args.gamma, k=args.k, ridge=args.ridge)
    try:
        result = workbench().scheme_weights(features, labels, config)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    atomic_save_npy(out, result.p.astype(np.float64))
    row = scheme_summary(result.p, features, labels)
    print(f"scheme {result.label}: VS {row['vs']:.4f}  entropy {row['entropy']:.4f}  ESS {row['ess']:.1f}  "
          f"largest weight {row['max_p']:.3g} ({row['max_relative']:.2f}x uniform)")
    for label, mass in row.get("class_mass", {}).items():
        print(f"  class {label}: mass {mass:.4f}")
    return 0
