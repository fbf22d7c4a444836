"""`python -m core train SOURCE ... --run-dir DIR`: create a run folder, then train it (a WGAN-GP on
real batches drawn by p). `python -m core train --run-dir DIR` executes a folder that exists: from
the start, or from its last good checkpoint.

  python -m core train digits --uniform --preset quick --run-dir ~/runs/digits-baseline
  python -m core train mnist --classes 0,1 --per-class 6000 --gamma 0.8 --preset paper --run-dir m01-g08
  python -m core train --run-dir m01-g08 [--steps 8000]     # continue (SOURCE and settings: config.json)
  python -m core train digits --model flow --scheme class-balanced --run-dir ~/runs/digits-flow-cb

--run-dir is any writable folder; a relative one is taken from the current directory. The studio
lists the runs under <data root>/runs/.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .common import ProgressBar, UserError, check_positive, dataset_spec, user_path, workbench
from ..data.embed import EmbedConfig
from ..data.storage import load_npy
from ..diversity.weights import WeightsConfig
from ..training import runs
from ..diversity.schemes import NEEDS_FEATURES, SCHEMES, SchemeConfig
from ..training.config import MODELS, TrainConfig


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train the paper's WGAN-GP (or a flow-matching model) with weighted or uniform real batches",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", help="built-in name or a path (omit to execute an existing --run-dir)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--weights", help="p as a .npy file (N,)")
    weights.add_argument("--gamma", type=float, help="compute diversity weights with this γ in [0, 1]")
    weights.add_argument("--uniform", action="store_true", help="uniform p: the baseline (default)")
    weights.add_argument("--scheme", choices=SCHEMES, help="p from a weighting scheme: diversity (γ 0.8, or use --gamma), "
                         "class-balanced (needs labels), inverse-density or leverage (on --embedder's features)")
    parser.add_argument("--model", choices=MODELS, default=None, help="wgan-gp (the paper's GAN, default) or flow "
                                                                    "(rectified flow matching, a U-Net)")
    parser.add_argument("--loss-weighting", choices=("sample", "importance"), default=None,
                        help="flow only: draw batches by p (sample, default) or uniform batches with loss n·p_i·l_i")
    parser.add_argument("--label", help="how the weights are described in the run's config.json (default: derived)")
    parser.add_argument("--embedder", default="pixels", help="features for --gamma: 'pixels' or MODEL[/PRETRAINED] (open_clip)")
    parser.add_argument("--preset", choices=("paper", "quick"), default=None, help="TrainConfig preset (default quick)")
    parser.add_argument("--steps", type=int, help="generator steps (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: the preset's)")
    parser.add_argument("--train-seed", type=int, help="seed of initialisation, sampling and noise (default 0)")
    parser.add_argument("--log-every", type=int, help="metrics every N steps (default: the preset's)")
    parser.add_argument("--sample-every", type=int, help="sample grid every N steps (default: the preset's)")
    parser.add_argument("--checkpoint-every", type=int, help="checkpoint every N steps (default: the preset's)")
    parser.add_argument("--run-dir", required=True, help="the run folder (relative: the current directory)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:I")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks on CUDA")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir (with SOURCE: "
                                                             "only if it is the same run)")
    parser.add_argument("--no-queue", action="store_true", help="do not wait for other runs of this data root")
    parser.add_argument("--classes", help="class subset, e.g. 0,1")
    parser.add_argument("--per-class", type=int, help="examples per class of the subset")
    parser.add_argument("--seed", type=int, default=0, help="seed of the class subset (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    wb = workbench()
    run_dir = user_path(args.run_dir)
    existing = (run_dir / "config.json").exists()
    if args.source is None and not existing:
        raise UserError(f"{run_dir} holds no run (no config.json): give SOURCE to create one")
    if args.source is None and (fixed := fixed_settings_given(args)):
        raise UserError(f"{', '.join(fixed)} cannot change an existing run ({run_dir / 'config.json'} keeps its "
                        "settings); only --steps and --device can")
    if args.source is not None:
        if existing and not args.resume:
            raise UserError(f"{run_dir} already holds a run: pass --resume, or choose another --run-dir")
        create(wb, args, run_dir)
    # an existing run keeps config.json's settings; only the number of steps and the device may change
    overrides = {k: v for k, v in (("steps", args.steps), ("device", args.device)) if v is not None} if existing else {}
    bar = ProgressBar()
    try:
        state = wb.execute_run(run_dir, queue=not args.no_queue, overrides=overrides, on_progress=bar)
    finally:
        bar.close()
    print(f"{run_dir.name}: {state} ({runs.read_status(run_dir).get('message', '')})")
    return 1 if state == "failed" else 0


def fixed_settings_given(args: argparse.Namespace) -> list[str]:
    """The options given that only a new run can take (an existing one would silently ignore them)."""
    names = ("weights", "gamma", "label", "preset", "batch_size", "train_seed", "log_every", "sample_every",
             "checkpoint_every", "classes", "per_class", "scheme", "model", "loss_weighting")
    given = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is not None]
    return given + [f"--{name}" for name in ("uniform", "bf16", "compile") if getattr(args, name)]


def create(wb, args: argparse.Namespace, run_dir: Path) -> Path:
    """The run folder of SOURCE and the options, written once (with --resume: checked to be the same)."""
    check_positive(args, ("per_class",))
    spec = dataset_spec(args.source, args.classes, args.per_class, args.seed)
    dataset = wb.load(spec)
    config = train_config(args)
    p, label = weights_from_args(wb, args, dataset)
    return wb.create_run(spec, p, config, label=args.label or label, preset=args.preset or "quick",
                         run_dir=run_dir, dataset=dataset, reuse=args.resume, scheme=scheme_of(args))


def train_config(args: argparse.Namespace):
    from dataclasses import fields

    values = {"steps": args.steps, "batch_size": args.batch_size, "seed": args.train_seed, "log_every": args.log_every,
              "sample_every": args.sample_every, "checkpoint_every": args.checkpoint_every, "device": args.device}
    values |= {"model": args.model or "wgan-gp", "loss_weighting": args.loss_weighting}
    if args.loss_weighting and values["model"] != "flow":
        raise UserError("--loss-weighting applies to --model flow only (the GAN always draws batches by p)")
    values |= {"bf16": True} if args.bf16 else {}
    values |= {"compile": True} if args.compile else {}
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig.preset(args.preset or "quick", **{k: v for k, v in values.items() if k in names and v is not None})


def weights_from_args(wb, args: argparse.Namespace, dataset) -> tuple[np.ndarray | None, str]:
    """(p, label): a weights file, diversity weights for --gamma, or None (uniform, the baseline)."""
    if args.weights:
        return weights_file(args.weights), Path(args.weights).name
    if args.gamma is not None:
        return diversity_weights(wb, dataset, args.gamma, args.embedder)
    if args.scheme not in (None, "uniform"):
        return scheme_weights(wb, dataset, args.scheme, args.embedder)
    return None, "uniform"


def scheme_of(args: argparse.Namespace) -> str:
    """The weighting scheme a new run is labelled by (Compare and the study group runs by it)."""
    if args.scheme:
        return args.scheme
    return "diversity" if args.gamma is not None else ("custom" if args.weights else "uniform")


def scheme_weights(wb, dataset, scheme: str, embedder: str) -> tuple[np.ndarray, str]:
    """p of a baseline scheme; the feature-based ones use --embedder's features."""
    if scheme == "class-balanced" and dataset.labels is None:
        raise UserError(f"--scheme class-balanced needs a labelled dataset; {dataset.name} has no labels")
    features, description = None, None
    if scheme in NEEDS_FEATURES:
        config = EmbedConfig.parse(embedder)
        features, description = wb.embed(dataset, config)[0], config.describe()
    result = wb.scheme_weights(features, dataset.labels, SchemeConfig(scheme), n=len(dataset))
    label = result.label + (f" ({description})" if description else "")
    print(f"{result.label} weights: largest {result.p.max() * len(result.p):.2f}x uniform")
    return result.p, label


def weights_file(text: str) -> np.ndarray:
    p = load_npy(user_path(text))
    return p.reshape(-1) if p.ndim == 2 and 1 in p.shape else p


def diversity_weights(wb, dataset, gamma: float, embedder: str) -> tuple[np.ndarray, str]:
    if not 0.0 <= gamma <= 1.0:
        raise UserError(f"--gamma must lie in [0, 1] (got {gamma})")
    config = EmbedConfig.parse(embedder)
    features, _ = wb.embed(dataset, config)
    result = wb.weights(features, WeightsConfig(gamma=gamma))
    print(f"diversity weights γ={gamma:g} ({config.describe()}): VS {result.vs_uniform:.3f} -> {result.vs_final:.3f}")
    return result.p, f"gamma={gamma:g} ({config.describe()})"
