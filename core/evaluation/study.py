"""The paper's study in one call: weights (Table 1), training (baseline + DivW per γ), evaluation.

For every class pair and seed: draw the balanced subset, embed it, optimise diversity weights
for each γ (Table 1: VS with uniform vs diversity weights), train a baseline GAN (uniform p)
and one DivW GAN per γ, and evaluate every model (VS, FID, wFID, P/R, IS, KID). Each finished
step is recorded in `<out>/state.json` (written atomically), so an interrupted study skips
what is done when started again; a half-trained model resumes from its last checkpoint.
Outputs: table1.csv/.md, metrics.csv, fig3.html/.png, fig4.png, report.html.

Every stage is a workbench operation (prepare, sweep, create_run + execute_run, evaluate): the
study is what a user would do by hand in the studio or the CLI, in a loop. The workbench is passed
in (`Workbench.study` calls `run_study(config, out, self)`), so this module never imports it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.datasets import DatasetSpec
from ..data.embed import EmbedConfig
from ..data.storage import atomic_save_npy
from ..diversity.schemes import SchemeConfig, scheme_summary
from ..diversity.weights import WeightsConfig
from .compare import evaluation_is_stale
from .evaluate import EvalConfig, METRICS
from .study_plan import (StudyConfig, StudyState, metric_rows, model_scheme, model_weights, pair_name,
                                        run_dir_of, scheme_weights_path, table1_rows, weights_path)
from .study_report import write_outputs
from ..jobs import JobStopped, OnProgress, ShouldStop, reporter, stopped
from ..training import runs
from ..training.config import TrainConfig

# --- what each stage is given -----------------------------------------------------------------------


def subset_spec(config: StudyConfig, pair, seed: int) -> DatasetSpec:
    return DatasetSpec(config.dataset, tuple(pair), config.per_class, seed)


def embedder_of(config: StudyConfig) -> EmbedConfig:
    return EmbedConfig(model=config.embedder, pretrained=config.pretrained, device=_device(config))


def train_config_of(config: StudyConfig, seed: int) -> TrainConfig:
    overrides = {"seed": seed, "device": config.device, "model": config.model}
    overrides |= {"steps": config.steps} if config.steps else {}
    overrides |= {"batch_size": config.batch_size} if config.batch_size else {}
    return TrainConfig.preset(config.preset, **overrides)


def eval_config_of(config: StudyConfig, seed: int) -> EvalConfig:
    return EvalConfig(embedder=config.embedder, pretrained=config.pretrained, n_samples=config.n_samples,
                      kid_subsets=config.kid_subsets, kid_subset_size=config.kid_subset_size, seed=seed,
                      device=_device(config))


def _device(config: StudyConfig) -> str | None:
    return None if config.device == "auto" else config.device


# --- the three stages -------------------------------------------------------------------------------


def weights_stage(workbench, config: StudyConfig, pair, seed: int, ready, out: Path, should_stop: ShouldStop) -> list[dict]:
    """Diversity weights for every γ (one batched sweep); saves p per γ; returns Table 1 rows."""
    results = workbench.sweep(ready.features, config.gammas, WeightsConfig(steps=config.weight_steps),
                              should_stop=should_stop)
    if any(result.stopped for result in results.values()):
        raise JobStopped("the study was stopped while computing weights")
    rows = []
    for gamma, result in results.items():
        atomic_save_npy(weights_path(out, pair, seed, gamma), result.p)
        rows.append({"pair": pair_name(pair), "seed": seed, "gamma": gamma, "n": len(ready.dataset),
                     "vs_uniform": result.vs_uniform, "vs_weighted": result.vs_final,
                     "embedder": ready.embedder.describe()})
    return rows


def schemes_stage(workbench, config: StudyConfig, pair, seed: int, ready, out: Path) -> list[dict]:
    """The baseline weightings (class-balanced, inverse-density, leverage): saves p per scheme; returns a
    summary row per scheme (uniform and each γ included, for comparison) of the data under it."""
    labels, rows = ready.dataset.labels, []
    weights = {"baseline": np.full(len(ready.dataset), 1.0 / len(ready.dataset))}
    weights |= {model: model_weights(out, pair, seed, model) for model in config.models() if model.startswith("divw_g")}
    for scheme in config.other_schemes():
        result = workbench.scheme_weights(ready.features, labels, SchemeConfig(scheme), n=len(ready.dataset))
        atomic_save_npy(scheme_weights_path(out, pair, seed, scheme), result.p)
        weights[scheme] = result.p
    for model, p in weights.items():
        summary = scheme_summary(p, ready.features, labels)
        summary.pop("class_mass", None)
        rows.append({"pair": pair_name(pair), "seed": seed, "model": model, **summary})
    return rows


def train_model(run_dir: Path, workbench, ready, p: np.ndarray | None, train_config: TrainConfig, label: str,
                preset: str, should_stop: ShouldStop = None, scheme: str | None = None) -> None:
    """Create the run folder (or find the same run half-done there) and execute it. A stopped or
    failed run raises, so the study's state never records it as done."""
    workbench.create_run(ready.spec, p, train_config, label=label, preset=preset, run_dir=run_dir,
                         dataset=ready.dataset, reuse=True, scheme=scheme)
    state = workbench.execute_run(run_dir, should_stop=should_stop)
    if state != "finished":
        message = runs.read_status(run_dir).get("message", "")
        raise RuntimeError(f"training {Path(run_dir).name} ended {state}: {message}")


def evaluate_model(run_dir: Path, workbench, p_target: np.ndarray | None, eval_config: EvalConfig) -> dict:
    """Sample, embed and score one trained model (eval.json and eval_grid.png in its run folder)."""
    return workbench.evaluate([run_dir], eval_config, p_target)[0]


def _stale(run_dir: Path, row: dict) -> bool:
    """An evaluation row older than its run's last checkpoint (the run trained on since): score it again
    rather than mix steps in one table."""
    return "checkpoint_step" in row and evaluation_is_stale(run_dir, row)


def _run_label(model: str, ready) -> str:
    if model == "baseline":
        return "uniform"
    if model.startswith("divw_g"):
        return f"gamma={model.removeprefix('divw_g')} ({ready.embedder.describe()})"
    return f"{model} ({ready.embedder.describe()})" if model != "class-balanced" else model


# --- the whole study ----------------------------------------------------------------------------


def run_study(config: StudyConfig, out: str | Path, workbench, on_progress: OnProgress = None,
              should_stop: ShouldStop = None) -> dict:
    """Run (or resume) the study into `out`; returns {"table1": rows, "metrics": rows, "files": [...]}.

    on_progress gets one event per stage (weights of a subset, training or evaluating a model)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = StudyState.open(out, config.validate())
    total = len(config.pairs) * config.seeds * (1 + bool(config.schemes) + 2 * len(config.models()))
    report = reporter(on_progress, "study", total)
    for pair in config.pairs:
        for seed in range(config.seeds):
            _study_subset(config, state, out, pair, seed, workbench, report, should_stop)
    files = write_outputs(config, state.done, out)
    report(total, f"wrote {', '.join(p.name for p in files)}")
    return {"table1": table1_rows(state.done), "metrics": metric_rows(state.done), "files": files}


def _study_subset(config: StudyConfig, state: StudyState, out: Path, pair, seed: int, workbench, report,
                  should_stop: ShouldStop) -> None:
    tag = f"{pair_name(pair)}/seed{seed}"
    say = lambda message: report(sum(1 for key in state.done if f"/{tag}" in key), f"[{tag}] {message}")  # noqa: E731
    ready = workbench.prepare(subset_spec(config, pair, seed), embedder_of(config), should_stop=should_stop)
    if f"weights/{tag}" not in state.done:
        say(f"weights for γ = {', '.join(f'{g:g}' for g in config.gammas)}")
        state.mark(f"weights/{tag}", weights_stage(workbench, config, pair, seed, ready, out, should_stop))
    if config.schemes and f"schemes/{tag}" not in state.done:
        say(f"weights of {', '.join(config.other_schemes()) or 'each scheme'}")
        state.mark(f"schemes/{tag}", schemes_stage(workbench, config, pair, seed, ready, out))
    p_target = np.load(weights_path(out, pair, seed, config.wfid_gamma()), allow_pickle=False)
    for model in config.models():
        if stopped(should_stop):
            raise JobStopped("the study was stopped; run it again to resume")
        run_dir = run_dir_of(out, pair, seed, model)
        if f"train/{tag}/{model}" not in state.done:
            say(f"training {model}")
            train_model(run_dir, workbench, ready, model_weights(out, pair, seed, model), train_config_of(config, seed),
                        _run_label(model, ready), config.preset, should_stop, model_scheme(model))
            state.mark(f"train/{tag}/{model}", {"run_dir": str(run_dir.relative_to(out))})
        if f"eval/{tag}/{model}" not in state.done or _stale(run_dir, state.done[f"eval/{tag}/{model}"]):
            say(f"evaluating {model}")
            result = evaluate_model(run_dir, workbench, p_target, eval_config_of(config, seed))
            row = {"pair": pair_name(pair), "seed": seed, "model": model}
            row |= {k: result[k] for k in (*METRICS, "kid_std", "is_source", "embedder", "n_gen", "checkpoint_step")}
            state.mark(f"eval/{tag}/{model}", row)
