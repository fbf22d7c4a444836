"""`python -m core evaluate RUN_DIR [RUN_DIR ...]`: score trained runs (VS, FID, wFID, P/R, IS, KID).

  python -m core evaluate digits-baseline digits-g08 --n-samples 2000
  python -m core evaluate m01-g08 --embedder ViT-L-14 --weights weights/m01_g1.npy

A relative RUN_DIR is looked up under <data_root>/runs/. Results go to RUN_DIR/eval.json.
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path

from core.cli import UserError


def add_parser(subparsers) -> None:
    from core.evaluation.evaluate import EvalConfig

    defaults = EvalConfig()
    parser = subparsers.add_parser("evaluate", help="score trained runs: VS, FID, weighted FID, precision/recall, IS, KID",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s) (relative: under <data_root>/runs/)")
    parser.add_argument("--embedder", default=defaults.embedder, help="'pixels' (default) or MODEL[/PRETRAINED] (open_clip)")
    parser.add_argument("--n-samples", type=int, default=defaults.n_samples, help=f"generated samples (default {defaults.n_samples})")
    parser.add_argument("--weights", help="target p (.npy under the data root) for wFID (default: each run's own weights)")
    parser.add_argument("--kid-subsets", type=int, default=defaults.kid_subsets, help="KID subsets")
    parser.add_argument("--kid-subset-size", type=int, default=defaults.kid_subset_size, help="rows per KID subset")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="generation/embedding batch (memory only)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="latent and KID seed")
    parser.add_argument("--inception", choices=("auto", "probe"), default=defaults.inception, help="IS class probabilities")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    from core.evaluation.evaluate import EvalConfig

    model, _, pretrained = args.embedder.partition("/")
    names = {f.name for f in fields(EvalConfig)} - {"embedder", "pretrained"}
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    config = replace(EvalConfig(), **values, embedder=model, pretrained=pretrained or EvalConfig.pretrained)
    for name in ("n_samples", "kid_subsets", "kid_subset_size", "batch_size"):
        if getattr(config, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(config, name)})")
    return config


def resolve_runs(data_root: Path, names: list[str]) -> list[Path]:
    from core.training.runs import runs_root
    from core.data.storage import resolve_under

    paths = []
    for name in names:
        path = Path(name).expanduser()
        path = resolve_under(data_root, path if path.is_absolute() else runs_root(data_root) / path)
        if not (path / "config.json").exists():
            raise UserError(f"{name} is not a training run (no config.json in {path})")
        paths.append(path)
    return paths


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from core.devices import resolve_device
    from core.evaluation.evaluate import METRICS, evaluate_run
    from core.data.storage import default_data_root, resolve_under

    data_root = default_data_root()
    config = config_from_args(args)
    resolve_device(config.device)  # a missing GPU is one error line, before the table starts
    run_dirs = resolve_runs(data_root, args.run_dirs)
    p_target = None
    if args.weights:
        p_target = np.load(resolve_under(data_root, args.weights), allow_pickle=False)
    for index, run_dir in enumerate(run_dirs):
        result = evaluate_run(run_dir, config, p_target=p_target, data_root=data_root)
        if index == 0:  # the header waits for a first row: bad input stays one error line
            print("run\t" + "\t".join(METRICS) + "\tembedder\tIS from")
        values = "\t".join("-" if result[m] is None else f"{result[m]:.4g}" for m in METRICS)
        print(f"{run_dir.name}\t{values}\t{result['embedder']}\t{result['is_source']}", flush=True)
    return 0
