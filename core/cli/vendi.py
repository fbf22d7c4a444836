"""`python -m core vendi FEATURES.npy [--weights P.npy] [--q 1]`: print the (weighted) Vendi Score."""

from __future__ import annotations
from .common import user_path
from .weights import load_features
from ..data.storage import load_npy
from ..diversity.vendi import vendi_score


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("vendi", help="Vendi Score of features (cosine similarity), optionally weighted")
    parser.add_argument("features", help="(n, d) float or uint8 .npy")
    parser.add_argument("--weights", help="(n,) probabilities .npy (default: uniform)")
    parser.add_argument("--q", type=float, default=1.0, help="order q > 0 ('inf' allowed); 1 = Shannon")
    parser.set_defaults(func=run)


def run(args) -> int:
    features = load_features(args.features)
    p = None if args.weights is None else load_npy(user_path(args.weights))
    print(f"{vendi_score(features, p=p, q=args.q):.6f}")
    return 0
