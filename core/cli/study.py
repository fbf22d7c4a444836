"""`python -m core study`: the paper's study (Table 1, training, evaluation) in one command."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from .common import ProgressBar, UserError, user_path, workbench
from ..data.datasets import BUILTINS
from ..data.embed import EmbedConfig
from ..evaluation.study import subset_spec
from ..diversity.schemes import SCHEMES
from ..evaluation.study_plan import StudyConfig
from ..training.config import MODELS


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "study", help="rerun the paper's study: weights (Table 1), baseline + DivW GANs, evaluation",
        description="Resumable: finished steps are recorded in OUT/state.json and skipped when run again.")
    parser.add_argument("--dataset", default=None, help="built-in name or a labelled dataset path (default mnist; digits with --quick)")
    parser.add_argument("--pairs", default=None, help="class pairs, e.g. 0-1,3-8,4-9")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (0..N-1)")
    parser.add_argument("--gammas", default=None, help="comma-separated γ values, e.g. 0.6,0.8,1.0")
    parser.add_argument("--steps", type=int, default=None, help="generator steps per model (default: the preset's)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch (default: the preset's)")
    parser.add_argument("--per-class", type=int, default=None, help="examples per class in each subset")
    parser.add_argument("--embedder", default=None, help="'pixels' (default) or MODEL[/PRETRAINED] (open_clip), e.g. ViT-L-14/openai")
    parser.add_argument("--n-samples", type=int, default=None, help="generated samples per model for evaluation")
    parser.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    parser.add_argument("--model", choices=MODELS, default=None, help="model family: wgan-gp (default) or flow")
    parser.add_argument("--schemes", default=None, help="weightings to train, e.g. uniform,diversity,class-balanced,"
                                                       "inverse-density (default: uniform + diversity per γ)")
    parser.add_argument("--quick", action="store_true", help="CPU-sized study on the bundled digits (minutes)")
    parser.add_argument("--out", default=None, help="output folder (relative: the current directory; default <data root>/studies/<dataset>[-quick])")
    parser.set_defaults(func=run)


def parse_pairs(text: str) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple(tuple(int(c) for c in item.split("-")) for item in text.split(",") if item.strip())
    except ValueError:
        raise UserError(f"--pairs must look like 0-1,3-8 (got {text!r})") from None
    if not pairs or any(len(p) != 2 or p[0] == p[1] for p in pairs):
        raise UserError(f"--pairs must list pairs of two different classes, like 0-1,3-8 (got {text!r})")
    return pairs


def parse_gammas(text: str) -> tuple[float, ...]:
    try:
        gammas = tuple(float(g) for g in text.split(",") if g.strip())
    except ValueError:
        raise UserError(f"--gammas must be comma-separated numbers (got {text!r})") from None
    if not gammas or any(not 0.0 <= g <= 1.0 for g in gammas):
        raise UserError(f"--gammas must lie in [0, 1] (got {text!r})")
    return gammas


def parse_schemes(text: str) -> tuple[str, ...]:
    schemes = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [s for s in schemes if s not in SCHEMES]
    if not schemes or unknown:
        raise UserError(f"--schemes must list some of {', '.join(SCHEMES)} (got {text!r})")
    return schemes


def config_from_args(args: argparse.Namespace):
    config = StudyConfig.quick() if args.quick else StudyConfig()
    overrides = {"dataset": args.dataset, "seeds": args.seeds, "steps": args.steps, "batch_size": args.batch_size,
                 "per_class": args.per_class, "embedder": args.embedder, "n_samples": args.n_samples, "device": args.device,
                 "pairs": parse_pairs(args.pairs) if args.pairs else None,
                 "gammas": parse_gammas(args.gammas) if args.gammas else None,
                 "model": args.model, "schemes": parse_schemes(args.schemes) if args.schemes else None}
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    embedder = EmbedConfig.parse(config.embedder)
    config = replace(config, embedder=embedder.model, pretrained=embedder.pretrained or config.pretrained)
    if config.dataset not in BUILTINS:  # the user's own path, made absolute for the runs' specs
        config = replace(config, dataset=str(user_path(config.dataset)))
    for name in ("seeds", "steps", "batch_size", "per_class", "n_samples"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
    return config


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    wb = workbench()
    name = Path(config.dataset).name + ("-quick" if args.quick else "") + ("-flow" if config.model == "flow" else "")
    name += "-schemes" if config.schemes else ""
    out = user_path(args.out) if args.out else wb.data_root / "studies" / name
    for pair in config.pairs:  # fail before anything is written when the dataset or a class is missing
        wb.load(subset_spec(config, pair, 0))
    bar = ProgressBar(sys.stdout)
    try:
        result = wb.study(config, out, on_progress=bar)
    except RuntimeError as exc:  # a model stopped or failed: finished steps stay recorded
        print(f"error: {exc}\nrun the same command again to resume from {out / 'state.json'}", file=sys.stderr)
        return 1
    finally:
        bar.close()
    print((out / "table1.md").read_text())
    print(f"report: {out / 'report.html'}")
    return 0 if result["metrics"] else 1
