"""`python -m core datasets [SOURCE]`: list the built-ins, or show what a source ingests as."""

from __future__ import annotations

import argparse
import json

import numpy as np
from .common import dataset_spec, workbench
from ..data.datasets import list_builtins


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "datasets", help="list built-in datasets and whether each is available here",
        description="Without SOURCE: the built-ins and where they were found. With SOURCE (a built-in "
                    "or a folder/.zip/.npy/.npz anywhere): its size, classes and skipped files.")
    parser.add_argument("source", nargs="?", help="a built-in name or a path (relative: the current directory)")
    parser.add_argument("--subfolders-as-classes", action="store_true",
                        help="folders/zips: label each image by its top-level subfolder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    wb = workbench()
    if args.source is None:
        rows = list_builtins(wb.data_root)
        print(json.dumps(rows, indent=2) if args.json else format_builtins(rows))
        return 0
    dataset = wb.load(dataset_spec(args.source, subfolders_as_classes=args.subfolders_as_classes))
    summary = summarise(dataset)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def format_builtins(rows: list[dict]) -> str:
    lines = [f"{'name':<14} {'available':<10} where", "-" * 72]
    for row in rows:
        lines.append(f"{row['name']:<14} {'yes' if row['available'] else 'no':<10} {row['where']}")
        lines.append(f"{'':<25} {row['description']}")
    return "\n".join(lines)


def summarise(dataset) -> dict:
    counts = None
    if dataset.labels is not None:
        values, n = np.unique(dataset.labels, return_counts=True)
        names = dataset.class_names or [str(v) for v in range(int(values.max()) + 1)]
        counts = {names[int(v)]: int(c) for v, c in zip(values, n)}
    return {"name": dataset.name, "images": int(len(dataset)), "shape": list(dataset.images.shape[1:]),
            "classes": counts, "features": None if dataset.features is None else list(dataset.features.shape),
            "fingerprint": dataset.fingerprint, "description": dataset.description,
            "skipped": [{"file": f, "reason": r} for f, r in dataset.skipped]}


def format_summary(summary: dict) -> str:
    h, w, c = summary["shape"]
    lines = [f"{summary['name']}: {summary['images']} images of {h}x{w}x{c} ({summary['description']})",
             f"fingerprint {summary['fingerprint']}"]
    if summary["classes"]:
        lines.append("classes: " + ", ".join(f"{k}={v}" for k, v in summary["classes"].items()))
    if summary["features"]:
        lines.append(f"precomputed features: {summary['features'][0]} x {summary['features'][1]}")
    for item in summary["skipped"]:
        lines.append(f"skipped {item['file']}: {item['reason']}")
    return "\n".join(lines)
