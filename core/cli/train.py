"""`python -m core train SOURCE ...`: train a WGAN-GP on real batches drawn by p, into a run folder.

  python -m core train digits --uniform --preset quick --run-dir digits-baseline
  python -m core train mnist --classes 0,1 --per-class 6000 --gamma 0.8 --preset paper --run-dir m01-g08
  python -m core train --run-dir m01-g08 --resume          # SOURCE and options from config.json

A relative --run-dir lands under <data_root>/runs/ (where the studio lists runs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.cli import UserError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train the paper's WGAN-GP with diversity-weighted (or uniform) real batches",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", help="built-in name or path under the data root (optional with --resume)")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--weights", help="p as a .npy file (N,) under the data root")
    weights.add_argument("--gamma", type=float, help="compute diversity weights with this γ in [0, 1]")
    weights.add_argument("--uniform", action="store_true", help="uniform p: the baseline (default)")
    parser.add_argument("--label", help="how the weights are described in the run's config.json (default: derived)")
    parser.add_argument("--embedder", default="pixels", help="features for --gamma: 'pixels' or MODEL[/PRETRAINED] (open_clip)")
    parser.add_argument("--preset", choices=("paper", "quick"), default=None, help="TrainConfig preset (default quick)")
    parser.add_argument("--steps", type=int, help="generator steps (default: the preset's)")
    parser.add_argument("--batch-size", type=int, help="batch size (default: the preset's)")
    parser.add_argument("--train-seed", type=int, help="seed of initialisation, sampling and noise (default 0)")
    parser.add_argument("--log-every", type=int, help="metrics every N steps (default: the preset's)")
    parser.add_argument("--sample-every", type=int, help="sample grid every N steps (default: the preset's)")
    parser.add_argument("--checkpoint-every", type=int, help="checkpoint every N steps (default: the preset's)")
    parser.add_argument("--run-dir", required=True, help="run folder (relative: under <data_root>/runs/)")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:I")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast on CUDA")
    parser.add_argument("--compile", action="store_true", help="torch.compile the networks on CUDA")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last good checkpoint")
    parser.add_argument("--no-queue", action="store_true", help="do not wait for other runs of this data root")
    parser.add_argument("--classes", help="class subset, e.g. 0,1")
    parser.add_argument("--per-class", type=int, help="examples per class of the subset")
    parser.add_argument("--seed", type=int, default=0, help="seed of the class subset (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core.training import execution as run_exec
    from core.training import runs
    from core.data.storage import default_data_root

    data_root = default_data_root()
    run_dir = resolve_run_dir(data_root, args.run_dir)
    try:
        config, images, p, record = _resume_inputs(args, run_dir) if args.resume else _new_inputs(args, run_dir)
    except (UserError, ValueError, FileNotFoundError) as exc:
        _fail_launched_run(run_dir, exc)
        raise
    if not args.resume:
        runs.create_run(run_dir, record, p)
    state = run_exec.execute_run(run_dir, data_root, config, images, p, resume=args.resume, queue=not args.no_queue)
    print(f"{run_dir.name}: {state} ({runs.read_status(run_dir).get('message', '')})")
    return 1 if state == "failed" else 0


def resolve_run_dir(data_root: Path, user_path: str) -> Path:
    from core.training.runs import runs_root
    from core.data.storage import resolve_under

    path = Path(user_path).expanduser()
    return resolve_under(data_root, path if path.is_absolute() else runs_root(data_root) / path)


def _new_inputs(args, run_dir: Path):
    from core.training import runs

    if (run_dir / "config.json").exists():
        raise UserError(f"{run_dir} already holds a run: pass --resume, or choose another --run-dir")
    if args.source is None:
        raise UserError("SOURCE (a built-in name or a path) is required for a new run")
    spec = _spec_from_args(args)
    dataset = _load(spec)
    p, label = _weights_from_args(args, dataset)
    label = args.label or label
    config = _config_from_args(args)
    record = runs.run_record(config, spec, dataset.fingerprint, p, label, args.preset or "quick")
    record["image_shape"] = list(dataset.images.shape[1:])
    return config, dataset.images, p, record


def _resume_inputs(args, run_dir: Path):
    """Saved config + weights, checked against the dataset as it is now (and the args, if given)."""
    from dataclasses import asdict, replace

    from core.training import runs

    saved = runs.read_config(run_dir)
    dataset = _load(saved["dataset"])
    p = np.load(run_dir / "weights.npy", allow_pickle=False)
    config = replace(runs.load_config(saved), **_overrides(args, ("steps", "device")))
    current = saved | {"train": asdict(config), "dataset_fingerprint": dataset.fingerprint,
                       "weights_fingerprint": runs.weights_fingerprint(p)}
    if args.source is not None:  # the user restated the run: it must be the same one
        dataset = _load(_spec_from_args(args))
        p, _ = _weights_from_args(args, dataset)
        new_config = replace(_config_from_args(args, saved.get("preset") or "quick"), steps=config.steps)
        current = runs.run_record(new_config, {}, dataset.fingerprint, p, "")
    runs.check_resume(saved, current)
    if config.steps != saved["train"]["steps"]:
        from core.data.storage import atomic_write_json

        atomic_write_json(run_dir / "config.json", saved | {"train": saved["train"] | {"steps": config.steps}})
    return config, dataset.images, p, saved


def _spec_from_args(args) -> dict:
    classes = None
    if args.classes:
        try:
            classes = [int(c) for c in args.classes.split(",") if c.strip()]
        except ValueError:
            raise UserError(f"--classes must be comma-separated class indices, e.g. 0,1 (got {args.classes!r})") from None
    return {"source": args.source, "classes": classes, "per_class": args.per_class, "seed": args.seed}


def _load(spec: dict):
    from core.data.datasets import load_dataset

    classes = tuple(spec["classes"]) if spec.get("classes") else None
    return load_dataset(spec["source"], classes=classes, per_class=spec.get("per_class"), seed=spec.get("seed", 0))


def _overrides(args, names) -> dict:
    values = {"steps": args.steps, "batch_size": args.batch_size, "seed": args.train_seed,
              "log_every": args.log_every, "sample_every": args.sample_every,
              "checkpoint_every": args.checkpoint_every, "device": args.device}
    values |= {"bf16": True} if args.bf16 else {}
    values |= {"compile": True} if args.compile else {}
    return {k: v for k, v in values.items() if k in names and v is not None}


def _config_from_args(args, default_preset: str = "quick"):
    from dataclasses import fields

    from core.devices import resolve_device
    from core.training.config import TrainConfig

    names = [f.name for f in fields(TrainConfig)]
    config = TrainConfig.preset(args.preset or default_preset, **_overrides(args, names)).validate()
    resolve_device(config.device)  # fail now (exit 2) if cuda was asked for and is absent
    return config


def _weights_from_args(args, dataset) -> tuple[np.ndarray, str]:
    n = len(dataset.images)
    if args.weights:
        return _weights_file(args.weights, n), Path(args.weights).name
    if args.gamma is not None:
        return _diversity_weights(dataset, args.gamma, args.embedder), f"gamma={args.gamma:g} ({args.embedder})"
    return np.full(n, 1.0 / n), "uniform"


def _weights_file(user_path: str, n: int) -> np.ndarray:
    from core.data.storage import default_data_root, resolve_under
    from core.training.runs import sampling_probabilities

    path = resolve_under(default_data_root(), user_path)
    if not path.exists():
        raise UserError(f"weights file {user_path} does not exist")
    try:
        p = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UserError(f"weights file {user_path} is not a plain .npy array ({exc})") from None
    return sampling_probabilities(p.reshape(-1) if p.ndim == 2 and 1 in p.shape else p, n)


def _diversity_weights(dataset, gamma: float, embedder: str) -> np.ndarray:
    from core.data.embed import EmbedConfig, WeightsUnavailable, embed_cached
    from core.diversity.weights import optimise_weights

    if not 0.0 <= gamma <= 1.0:
        raise UserError(f"--gamma must lie in [0, 1] (got {gamma})")
    model, _, pretrained = embedder.partition("/")
    config = EmbedConfig(model=model, pretrained=pretrained or EmbedConfig.pretrained)
    try:
        features, _ = embed_cached(dataset, config)
    except WeightsUnavailable as exc:
        raise UserError(str(exc)) from None
    result = optimise_weights(features, gamma=gamma)
    print(f"diversity weights γ={gamma:g} ({config.describe()}): VS {result.vs_uniform:.3f} -> {result.vs_final:.3f}")
    return result.p


def _fail_launched_run(run_dir: Path, exc: BaseException) -> None:
    """A run the studio launched (status "queued" without a pid yet) records why it never started."""
    from core.training import runs

    status = runs.read_status(run_dir)
    if status.get("state") == "queued" and not status.get("pid"):
        runs.write_status(run_dir, "failed", message=f"could not start: {exc}")
