"""`python -m core export SOURCE --weights P.npy --format FORMAT --out DIR`: a dataset and its weights as
files another tool trains from.

  python -m core export ./photos --subfolders-as-classes --weights p.npy --format imagefolder --out hf/
  python -m core export ./photos --weights p.npy --format kohya --total 4000 --out lora-data/
  python -m core export digits --classes 0,1 --per-class 500 --weights p.npy --format resampled --draws 5000 --out r/
  python -m core export ./photos --weights p.npy --format csv --out exports/

imagefolder: Hugging Face `datasets` (load_dataset("imagefolder", data_dir=DIR)), a metadata.csv with
weight and p (and why-columns with --features). kohya: one folder per repeat count and a
dataset_config.toml (repeats by largest-remainder rounding of TOTAL·p; the error is printed). resampled:
DRAWS images drawn by p with replacement, hard-linked, with a manifest. csv: index, id, label, weight, p
plus the .npy and its JSON sidecar. SOURCE and its selection must be those the weights were computed on.
"""

from __future__ import annotations

import argparse

from .common import UserError, check_positive, dataset_spec, user_path, workbench
from ..data.storage import load_npy
from ..diversity.export import ExportMeta, export_weights
from ..diversity.export_formats import TRAINER_FORMATS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("export", help="a dataset and its weights as files for other training tools",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a built-in name or a folder/.zip/.npy/.npz (relative: the current directory)")
    parser.add_argument("--weights", required=True, help="p (.npy, one probability per image, the dataset's order)")
    parser.add_argument("--format", required=True, choices=(*TRAINER_FORMATS, "csv"), help="what to write")
    parser.add_argument("--out", required=True, help="the folder to write (created; an earlier export there is replaced)")
    parser.add_argument("--classes", help="comma-separated class ids of a built-in subset, e.g. 0,1")
    parser.add_argument("--per-class", type=int, help="images per class of the subset")
    parser.add_argument("--seed", type=int, default=0, help="which subset is drawn; and the draws of --format resampled")
    parser.add_argument("--subfolders-as-classes", action="store_true", help="folders/zips: label by top-level subfolder")
    parser.add_argument("--total", type=int, help="kohya: draws per pass over the repeated images (default 4·n)")
    parser.add_argument("--draws", type=int, help="resampled: how many images to draw (default n)")
    parser.add_argument("--features", help="(n, d) .npy: imagefolder and csv add the why-columns")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_positive(args, ("per_class", "total", "draws"))
    wb = workbench()
    dataset = wb.load(dataset_spec(args.source, args.classes, args.per_class, args.seed, args.subfolders_as_classes))
    p = load_npy(user_path(args.weights))
    if p.ndim != 1 or len(p) != len(dataset):
        raise UserError(f"{args.weights} holds {p.shape} weights but {args.source} has {len(dataset)} images "
                        "(use the same source, --classes and --per-class as when the weights were computed)")
    features = None
    if args.features:
        features = load_npy(user_path(args.features))
        if features.ndim != 2 or len(features) != len(dataset):
            raise UserError(f"{args.features}: expected ({len(dataset)}, d) features, got {features.shape}")
    if args.format == "csv":
        from ..diversity import contribution

        meta = ExportMeta(dataset_name=dataset.name, dataset_fingerprint=dataset.fingerprint, embedder="",
                          config={"weights": str(user_path(args.weights))})
        extra = contribution.explanation_columns(features, p / p.sum()) if features is not None else None
        paths = export_weights(p / p.sum(), dataset.ids, dataset.labels, meta, user_path(args.out),
                               stem=user_path(args.weights).stem, extra_columns=extra)
        print("\n".join(str(path) for path in paths.values()))
        return 0
    result = wb.export_for_trainer(dataset, p, args.format, args.out, args.total, args.draws, features, args.seed)
    print(f"{result.folder}\n{result.summary}\n\n{result.snippet}")
    return 0
