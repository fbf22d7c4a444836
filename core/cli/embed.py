"""`python -m core embed SOURCE --out FEATURES.npy`: features for a dataset, through the cache."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from core.cli import UserError


def add_parser(subparsers) -> None:
    from core.data.embed import EmbedConfig

    defaults = EmbedConfig()
    parser = subparsers.add_parser(
        "embed", help="embed a dataset (CLIP or pixels) and save (N, d) float32 features",
        description="SOURCE is a built-in (digits, mnist, fashion-mnist) or a folder/.zip/.npy/.npz "
                    "under the data root. Output paths are under the data root too.")
    parser.add_argument("source")
    parser.add_argument("--classes", default=None, help="class subset, e.g. 0,1 (the paper's pairs)")
    parser.add_argument("--per-class", type=int, default=None, help="examples per class (e.g. 3000)")
    parser.add_argument("--seed", type=int, default=0, help="subset seed")
    parser.add_argument("--subfolders-as-classes", action="store_true", help="folders: subfolder = class")
    parser.add_argument("--model", default=defaults.model, help="open_clip model, 'pixels' or 'precomputed'")
    parser.add_argument("--pretrained", default=defaults.pretrained, help="open_clip tag, checkpoint file or 'none'")
    parser.add_argument("--image-size", type=int, default=None, help="pixels: resize to this square size")
    parser.add_argument("--batch-size", type=int, default=None, help="default: sized to the device")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--out", required=True, help="features .npy (a .json with the config goes beside it)")
    parser.add_argument("--labels-out", default=None, help="labels .npy (int64)")
    parser.add_argument("--no-cache", action="store_true", help="recompute even when cached")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.set_defaults(func=run)


def parse_classes(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        classes = tuple(int(c) for c in text.split(",") if c.strip())
    except ValueError:
        raise UserError(f"--classes must be comma-separated class indices, like 0,1 (got {text!r})") from None
    if not classes:
        raise UserError("--classes is empty")
    return classes


def output_paths(args: argparse.Namespace, root: Path) -> dict[str, Path]:
    """Every output resolved under the data root and checked before any work is done."""
    from core.data.storage import resolve_under

    paths = {"features": resolve_under(root, args.out)}
    paths["meta"] = paths["features"].with_suffix(".json")
    if args.labels_out:
        paths["labels"] = resolve_under(root, args.labels_out)
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
    from core.data import storage
    from core.data.datasets import load_dataset
    from core.data.embed import EmbedConfig, WeightsUnavailable, embed, embed_cached

    for name in ("per_class", "batch_size", "image_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    root = storage.default_data_root()
    paths = output_paths(args, root)
    dataset = load_dataset(args.source, classes=parse_classes(args.classes), per_class=args.per_class,
                           seed=args.seed, subfolders_as_classes=args.subfolders_as_classes)
    if "labels" in paths and dataset.labels is None:
        raise UserError(f"{dataset.name} has no labels to write to --labels-out")
    config = EmbedConfig(args.model, args.pretrained, args.image_size, args.batch_size, args.device)
    progress = lambda done, total: print(f"\rembedded {done}/{total}", end="", file=sys.stderr, flush=True)
    try:
        if args.no_cache:
            features, hit = embed(dataset, config.model, config.pretrained, config.device, config.batch_size,
                                  progress, image_size=config.image_size), False
        else:
            features, hit = embed_cached(dataset, config, on_progress=progress)
    except WeightsUnavailable as exc:
        raise UserError(str(exc)) from None
    print(file=sys.stderr)
    write_outputs(paths, features, dataset, config, hit)
    return 0


def write_outputs(paths: dict[str, Path], features, dataset, config, cache_hit: bool) -> None:
    from core import __version__
    from core.data import storage

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
