"""`python -m core embed SOURCE --out FEATURES.npy`: features for a dataset, through the cache."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

from .. import __version__
from .common import ProgressBar, UserError, check_positive, dataset_spec, user_path, workbench
from ..data import storage
from ..data.embed import EmbedConfig


def add_parser(subparsers) -> None:
    defaults = EmbedConfig()
    parser = subparsers.add_parser(
        "embed", help="embed a dataset (CLIP or pixels) and save (N, d) float32 features",
        description="SOURCE is a built-in (digits, mnist, fashion-mnist) or a folder/.zip/.npy/.npz anywhere "
                    "on this machine; relative paths (SOURCE and outputs) are taken from the current directory.")
    parser.add_argument("source")
    parser.add_argument("--classes", default=None, help="class subset, e.g. 0,1 (the paper's pairs)")
    parser.add_argument("--per-class", type=int, default=None, help="examples per class (e.g. 3000)")
    parser.add_argument("--seed", type=int, default=0, help="subset seed")
    parser.add_argument("--subfolders-as-classes", action="store_true", help="folders: subfolder = class")
    parser.add_argument("--model", default=defaults.model,
                        help="open_clip model (ViT-L-14, or with its weights ViT-L-14/openai as the studio "
                             "writes it), 'pixels' or 'precomputed'")
    parser.add_argument("--pretrained", default=None,
                        help=f"open_clip tag, checkpoint file or 'none' (default: {defaults.pretrained})")
    parser.add_argument("--image-size", type=int, default=None, help="pixels: resize to this square size")
    parser.add_argument("--batch-size", type=int, default=None, help="default: sized to the device")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--out", required=True, help="features .npy (a .json with the config goes beside it)")
    parser.add_argument("--labels-out", default=None, help="labels .npy (int64)")
    parser.add_argument("--no-cache", action="store_true", help="recompute even when cached")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def output_paths(args: argparse.Namespace) -> dict[str, Path]:
    """Every output resolved (relative: the current directory) and checked before any work is done."""
    paths = {"features": user_path(args.out)}
    paths["meta"] = paths["features"].with_suffix(".json")
    if args.labels_out:
        paths["labels"] = user_path(args.labels_out)
    for key in ("features", "labels"):
        if key in paths and paths[key].suffix != ".npy":
            raise UserError(f"--{'out' if key == 'features' else 'labels-out'} must end in .npy")
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not args.overwrite:
        raise UserError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")
    if len(set(paths.values())) != len(paths):
        raise UserError("--out and --labels-out must be different files")
    return paths


def run(args: argparse.Namespace) -> int:
    check_positive(args, ("per_class", "batch_size", "image_size"))
    paths = output_paths(args)
    wb = workbench()
    dataset = wb.load(dataset_spec(args.source, args.classes, args.per_class, args.seed, args.subfolders_as_classes))
    if "labels" in paths and dataset.labels is None:
        raise UserError(f"{dataset.name} has no labels to write to --labels-out")
    try:
        config = EmbedConfig.parse(args.model, args.pretrained, image_size=args.image_size,
                                   batch_size=args.batch_size, device=args.device)
    except ValueError as exc:
        raise UserError(f"--model/--pretrained: {exc}") from None
    bar = ProgressBar()
    try:
        features, hit = wb.embed(dataset, config, on_progress=bar, use_cache=not args.no_cache)
    finally:
        bar.close()
    write_outputs(paths, features, dataset, config, hit)
    return 0


def write_outputs(paths: dict[str, Path], features, dataset, config, cache_hit: bool) -> None:
    storage.atomic_save_npy(paths["features"], features)
    if "labels" in paths:
        storage.atomic_save_npy(paths["labels"], dataset.labels)
    storage.atomic_write_json(paths["meta"], {
        "config": asdict(config), "embedder": config.describe(), "dataset": dataset.name,
        "fingerprint": dataset.fingerprint, "shape": list(features.shape), "ids": dataset.ids,
        "class_names": dataset.class_names, "cache_hit": cache_hit, "divweights": __version__})
    print(f"wrote {paths['features']} {features.shape[0]}x{features.shape[1]} "
          f"({config.describe()}{', from cache' if cache_hit else ''})")
    if "labels" in paths:
        print(f"wrote {paths['labels']}")
