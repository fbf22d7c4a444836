"""The paper's study in one call: weights (Table 1), training (baseline + DivW per γ), evaluation.

For every class pair and seed: draw the balanced subset, embed it, optimise diversity weights
for each γ (Table 1: VS with uniform vs diversity weights), train a baseline GAN (uniform p)
and one DivW GAN per γ, and evaluate every model (VS, FID, wFID, P/R, IS, KID). Each finished
step is recorded in `<out>/state.json` (written atomically), so an interrupted study skips
what is done when started again; a half-trained model resumes from its last checkpoint.
Outputs: table1.csv/.md, metrics.csv, fig3.html/.png, fig4.png, report.html.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from core.data.storage import atomic_save_npy
from core.evaluation.evaluate import METRICS, EvalConfig
from core.evaluation.study_plan import (StudyConfig, StudyState, metric_rows, model_weights, pair_name,
                                        run_dir_of, table1_rows, weights_path)
from core.evaluation.study_report import write_outputs

# --- the three stages ---------------------------------------------------------------------------


def load_subset(config: StudyConfig, pair, seed: int, data_root=None):
    from core.data.datasets import load_dataset

    return load_dataset(config.dataset, data_root, classes=tuple(pair), per_class=config.per_class, seed=seed)


def subset_features(config: StudyConfig, dataset, out: Path) -> np.ndarray:
    from core.data.embed import EmbedConfig, embed_cached

    device = None if config.device == "auto" else config.device
    embed_config = EmbedConfig(model=config.embedder, pretrained=config.pretrained, device=device)
    return embed_cached(dataset, embed_config, out / "cache" / "embeddings")[0]


def weights_stage(config: StudyConfig, pair, seed: int, dataset, features, out: Path) -> list[dict]:
    """Diversity weights for every γ; saves p per γ; returns Table 1 rows."""
    from core.diversity.weights import sweep_gamma

    results = sweep_gamma(features, config.gammas, cache_dir=out / "cache" / "weights", steps=config.weight_steps)
    rows = []
    for gamma, result in results.items():
        atomic_save_npy(weights_path(out, pair, seed, gamma), result.p)
        rows.append({"pair": pair_name(pair), "seed": seed, "gamma": gamma, "n": len(dataset),
                     "vs_uniform": result.vs_uniform, "vs_weighted": result.vs_final, "embedder": _embedder(config)})
    return rows


def train_config_of(config: StudyConfig, seed: int):
    from core.training.config import TrainConfig

    overrides = {"seed": seed, "device": config.device}
    overrides |= {"steps": config.steps} if config.steps else {}
    overrides |= {"batch_size": config.batch_size} if config.batch_size else {}
    return TrainConfig.preset(config.preset, **overrides)


def eval_config_of(config: StudyConfig, seed: int) -> EvalConfig:
    device = None if config.device == "auto" else config.device
    return EvalConfig(embedder=config.embedder, pretrained=config.pretrained, n_samples=config.n_samples,
                      kid_subsets=config.kid_subsets, kid_subset_size=config.kid_subset_size, seed=seed, device=device)


def _embedder(config: StudyConfig) -> str:
    return "pixels" if config.embedder == "pixels" else f"{config.embedder}/{config.pretrained}"


# --- training and evaluation of one model ---------------------------------------------------------


def train_model(run_dir: Path, dataset, p: np.ndarray | None, train_config, data_root=None,
                dataset_spec: dict | None = None) -> None:
    """Train one GAN into `run_dir` (resuming a half-finished run there). The one training call.

    Uses the run folders of core.training.runs (checkpoints, grids, status); waits for the data root's
    job lock like every other training job. A stopped or failed run raises, so the study's
    state never records it as done."""
    from core.training import execution as run_exec
    from core.training import runs

    state = run_exec.run_training(run_dir, dataset, p, train_config, data_root=data_root, dataset_spec=dataset_spec)
    if state != "finished":
        message = runs.read_status(run_dir).get("message", "")
        raise RuntimeError(f"training {Path(run_dir).name} ended {state}: {message}")


def evaluate_model(run_dir: Path, dataset, features_real: np.ndarray, p_target: np.ndarray | None, eval_config: EvalConfig, cache_dir: Path) -> dict:
    """Sample, embed and score one trained model (eval.json and eval_grid.png in its run folder)."""
    from core.evaluation.evaluate import evaluate_run

    return evaluate_run(run_dir, eval_config, dataset, p_target, features_real, cache_dir=cache_dir)


# --- the whole study ----------------------------------------------------------------------------


def run_study(config: StudyConfig, out: str | Path, data_root=None, on_event: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) the study into `out`; returns {"table1": rows, "metrics": rows, "files": [...]}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = on_event or (lambda message: None)
    state = StudyState.open(out, config)
    for pair in config.pairs:
        for seed in range(config.seeds):
            _study_subset(config, state, out, pair, seed, data_root, say)
    files = write_outputs(config, state.done, out)
    say(f"wrote {', '.join(p.name for p in files)}")
    return {"table1": table1_rows(state.done), "metrics": metric_rows(state.done), "files": files}


def _study_subset(config: StudyConfig, state: StudyState, out: Path, pair, seed: int, data_root, say) -> None:
    tag = f"{pair_name(pair)}/seed{seed}"
    dataset = load_subset(config, pair, seed, data_root)
    features = subset_features(config, dataset, out)
    if f"weights/{tag}" not in state.done:
        say(f"[{tag}] weights for γ = {', '.join(f'{g:g}' for g in config.gammas)}")
        state.mark(f"weights/{tag}", weights_stage(config, pair, seed, dataset, features, out))
    p_target = np.load(weights_path(out, pair, seed, config.wfid_gamma()), allow_pickle=False)
    for model in config.models():
        run_dir = run_dir_of(out, pair, seed, model)
        if f"train/{tag}/{model}" not in state.done:
            say(f"[{tag}] training {model}")
            spec = {"source": config.dataset, "classes": list(pair), "per_class": config.per_class, "seed": seed}
            train_model(run_dir, dataset, model_weights(out, pair, seed, model), train_config_of(config, seed), data_root,
                        dataset_spec=spec)  # recorded in config.json: `core evaluate RUN_DIR` rebuilds the subset
            state.mark(f"train/{tag}/{model}", {"run_dir": str(run_dir.relative_to(out))})
        if f"eval/{tag}/{model}" not in state.done:
            say(f"[{tag}] evaluating {model}")
            result = evaluate_model(run_dir, dataset, features, p_target, eval_config_of(config, seed), out / "cache")
            row = {"pair": pair_name(pair), "seed": seed, "model": model} | {k: result[k] for k in (*METRICS, "kid_std", "is_source", "embedder", "n_gen")}
            state.mark(f"eval/{tag}/{model}", row)


