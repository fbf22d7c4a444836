"""`python -m core evaluate RUN_DIR [RUN_DIR ...]`: score trained runs (VS, FID, wFID, P/R, IS, KID).

  python -m core evaluate ~/runs/digits-baseline ~/runs/digits-g08 --n-samples 2000
  python -m core evaluate m01-g08 --embedder ViT-L-14 --weights weights/m01_g1.npy

RUN_DIR is a run folder (relative: the current directory); a bare name that is not a folder here
is looked up among the studio's runs under <data_root>/runs/. Results go to RUN_DIR/eval.json.
"""

from __future__ import annotations

import argparse
from dataclasses import fields, replace
from pathlib import Path

from .common import UserError, check_positive, user_path, workbench
from ..data.embed import EmbedConfig
from ..data.storage import load_npy
from ..devices import resolve_device
from ..evaluation.evaluate import EvalConfig, METRICS


def add_parser(subparsers) -> None:
    defaults = EvalConfig()
    parser = subparsers.add_parser("evaluate", help="score trained runs: VS, FID, weighted FID, precision/recall, IS, KID",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s), or names of studio runs")
    parser.add_argument("--embedder", default=defaults.embedder, help="'pixels' (default) or MODEL[/PRETRAINED] (open_clip)")
    parser.add_argument("--n-samples", type=int, default=defaults.n_samples, help=f"generated samples (default {defaults.n_samples})")
    parser.add_argument("--weights", help="target p (.npy) for wFID (default: each run's own weights)")
    parser.add_argument("--kid-subsets", type=int, default=defaults.kid_subsets, help="KID subsets")
    parser.add_argument("--kid-subset-size", type=int, default=defaults.kid_subset_size, help="rows per KID subset")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="generation/embedding batch (memory only)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="latent and KID seed")
    parser.add_argument("--inception", choices=("auto", "probe"), default=defaults.inception, help="IS class probabilities")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    check_positive(args, ("n_samples", "kid_subsets", "kid_subset_size", "batch_size"))
    embedder = EmbedConfig.parse(args.embedder)
    names = {f.name for f in fields(EvalConfig)} - {"embedder", "pretrained"}
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    return replace(EvalConfig(), **values, embedder=embedder.model, pretrained=embedder.pretrained)


def resolve_runs(runs_root: Path, names: list[str]) -> list[Path]:
    paths = []
    for name in names:
        path = user_path(name)
        if not path.exists() and "/" not in name:  # a studio run's name
            path = runs_root / name
        if not (path / "config.json").exists():
            raise UserError(f"{name} is not a training run (no config.json in {path})")
        paths.append(path)
    return paths


def run(args: argparse.Namespace) -> int:
    wb = workbench()
    config = config_from_args(args)
    resolve_device(config.device)  # a missing GPU is one error line, before the table starts
    run_dirs = resolve_runs(wb.runs_root(), args.run_dirs)
    p_target = load_npy(user_path(args.weights)) if args.weights else None
    for index, run_dir in enumerate(run_dirs):
        result = wb.evaluate([run_dir], config, p_target)[0]
        if index == 0:  # the header waits for a first row: bad input stays one error line
            print("run\t" + "\t".join(METRICS) + "\tembedder\tIS from")
        values = "\t".join("-" if result[m] is None else f"{result[m]:.4g}" for m in METRICS)
        print(f"{run_dir.name}\t{values}\t{result['embedder']}\t{result['is_source']}", flush=True)
    return 0
