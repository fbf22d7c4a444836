"""What the Compare tab shows, computed without gradio: metric tables over seeds, probability
mass per class (data vs diversity-weighted target vs each model), a shared 2-D map of real and
generated features (coverage), and nearest training images (memorisation check)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from .evaluate import METRICS, mean_ci, nearest_real
from ..training.runs import latest_checkpoint_step, latest_sample, list_runs, read_json, read_status, run_scheme


def metric_table(evaluations: list[dict]) -> list[dict]:
    """Rows {model, n_seeds, embedder, <metric>: (mean, ci half-width)} from eval dicts that
    carry "model" and "embedder". Numbers from different embedders are kept in separate rows."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for evaluation in evaluations:  # an out-of-date evaluation is never pooled with current ones
        model = evaluation["model"] + (" (out of date)" if evaluation.get("stale") else "")
        groups[(model, evaluation["embedder"])].append(evaluation)
    rows = []
    for (model, embedder), group in groups.items():
        steps = sorted({f"{evaluated_step(e)}/{e.get('steps')}" for e in group})
        row = {"model": model, "embedder": embedder, "n_seeds": len(group), "steps": ", ".join(steps)}
        rows.append(row | {metric: mean_ci([e.get(metric) for e in group]) for metric in METRICS})
    return rows


def comparison_warnings(run_dirs: list[Path], evaluations: list[dict]) -> list[str]:
    """Why a side-by-side may mislead: runs trained for different numbers of steps (or stopped
    early), on different data, or evaluated with different embedders."""
    warnings = []
    records = {Path(d).name: read_json(Path(d) / "config.json") for d in run_dirs}
    statuses = {Path(d).name: read_status(Path(d)) for d in run_dirs}
    progress = {name: (statuses[name].get("step", 0), record.get("train", {}).get("steps")) for name, record in records.items()}
    if len({steps for _, steps in progress.values()}) > 1 or any(step != steps for step, steps in progress.values()):
        listed = ", ".join(f"{name} {step}/{steps}" for name, (step, steps) in progress.items())
        warnings.append(f"These runs are at different training steps or unfinished ({listed}): compare finished "
                        "runs of equal length.")
    if len({record.get("dataset_fingerprint") for record in records.values()}) > 1:
        warnings.append("These runs trained on different data.")
    if len({e.get("embedder") for e in evaluations}) > 1:
        warnings.append("These evaluations used different embedders: their numbers do not compare.")
    stale = [e for e in evaluations if e.get("stale")]
    if stale:
        listed = ", ".join(f"{Path(e['run_dir']).name} (evaluated at step {evaluated_step(e)}, trained to "
                           f"{e['trained_step']})" for e in stale)
        warnings.append(f"Out-of-date evaluations: {listed}. Their rows are marked \"out of date\"; select them "
                        "and press Evaluate selected runs to score their last checkpoint.")
    return warnings


def evaluated_step(evaluation: dict) -> int | None:
    """The training step an evaluation scored: its checkpoint's (older eval.json: the run's status step)."""
    return evaluation.get("checkpoint_step", evaluation.get("step"))


def evaluation_is_stale(run_dir: Path, evaluation: dict) -> bool:
    """True when the run has a newer checkpoint than the one its evaluation scored."""
    latest = latest_checkpoint_step(Path(run_dir))
    return latest is not None and evaluated_step(evaluation) is not None and latest > evaluated_step(evaluation)


def class_mass_rows(labels_real: np.ndarray, p_target: np.ndarray | None, features_real: np.ndarray,
                    features_gen: dict[str, np.ndarray]) -> tuple[list[int], dict[str, np.ndarray]]:
    """Classes and, per source, the share of probability mass per class: "data" (uniform),
    "target" (the diversity weights), then each model (generated samples labelled by their
    nearest real image)."""
    labels_real = np.asarray(labels_real)
    classes = np.unique(labels_real)
    index = np.searchsorted(classes, labels_real)
    shares = {"data": np.bincount(index, minlength=len(classes)) / len(index)}
    if p_target is not None:
        shares["target"] = np.bincount(index, weights=np.asarray(p_target, np.float64), minlength=len(classes))
        shares["target"] = shares["target"] / shares["target"].sum()
    for name, features in features_gen.items():
        nearest = index[nearest_real(features_real, features)]
        shares[name] = np.bincount(nearest, minlength=len(classes)) / len(nearest)
    return [int(c) for c in classes], shares


def shared_map(features_real: np.ndarray, features_gen: dict[str, np.ndarray], method: str = "pca",
               seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    """2-D coordinates of real rows and of each generated set on the *same* map, fitted on the
    real data only: (coords_real (n, 2), {name: (m, 2)}, label of the method used)."""
    real = np.asarray(features_real, np.float64)
    if method == "umap":
        import umap  # late: numba compile on first use

        reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_jobs=1,
                            n_neighbors=max(2, min(15, len(real) - 1))).fit(real)
        return reducer.embedding_, {k: reducer.transform(np.asarray(v, np.float64)) for k, v in features_gen.items()}, "UMAP"
    mean = real.mean(axis=0)
    _, _, vt = np.linalg.svd(real - mean, full_matrices=False)
    axes = vt[:2].T  # (d, 2) principal directions of the real data
    project = lambda x: (np.asarray(x, np.float64) - mean) @ axes  # noqa: E731
    return project(real), {k: project(v) for k, v in features_gen.items()}, "PCA"


# --- runs to compare ------------------------------------------------------------------------------

STUDY_MODEL = re.compile(r"^(?P<pair>\d+-\d+)_s(?P<seed>\d+)_"
                         r"(?P<model>baseline|divw_g[0-9.]+|class-balanced|inverse-density|leverage)$")


def comparable_runs(data_root: Path) -> list[dict]:
    """Runs under <data_root>/runs/ and inside study folders (<data_root>/<study>/runs/):
    {"path", "label", "state", "evaluated"}, studio runs first, newest first."""
    found = [(Path(row["path"]), row["state"]) for row in list_runs(data_root)]
    for state_file in sorted(Path(data_root).glob("*/state.json")):  # study folders
        for run_dir in sorted((state_file.parent / "runs").glob("*/config.json")):
            found.append((run_dir.parent, read_status(run_dir.parent).get("state", "unknown")))
    return [{"path": path, "label": run_label(path), "state": state, "evaluated": evaluation_state(path)}
            for path, state in found]


def evaluation_state(run_dir: Path) -> str | None:
    """None (never evaluated), "current", or "out of date" (the run trained on since)."""
    evaluation = read_json(Path(run_dir) / "eval.json")
    if not evaluation:
        return None
    return "out of date" if evaluation_is_stale(run_dir, evaluation) else "current"


def run_label(run_dir: Path) -> str:
    """The model a run stands for, shared by its seeds, by weighting scheme: "0-1 baseline", "0-1 DivW γ=0.8",
    "0-1 class-balanced", or the weights label of a studio run ("uniform" shown as "baseline", diversity
    weights as "DivW ..."); " (flow)" marks a flow-matching model (the GAN is unmarked)."""
    import json

    try:
        record = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        record = None
    family = " (flow)" if record and record.get("train", {}).get("model") == "flow" else ""
    match = STUDY_MODEL.match(Path(run_dir).name)
    if match:
        model = match["model"].replace("divw_g", "DivW γ=")
        return f"{match['pair']} {model}{family}"
    if record is None:
        return Path(run_dir).name
    weights, scheme = record.get("weights") or "weights", run_scheme(record)
    if scheme == "uniform":
        return "baseline" + family
    return (f"DivW {weights}" if scheme in ("diversity", "custom") else weights) + family


def latest_grid(run_dir: Path) -> Path | None:
    """The run's newest training grid (fixed latents: comparable across runs)."""
    return latest_sample(run_dir)


def load_evaluations(run_dirs: list[Path]) -> list[dict]:
    """eval.json of each run that has one, with its model label added."""
    import json

    evaluations = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "eval.json"
        if path.exists():
            steps = read_json(Path(run_dir) / "config.json").get("train", {}).get("steps")
            evaluation = json.loads(path.read_text())
            evaluations.append(evaluation | {"model": run_label(run_dir), "run_dir": str(run_dir), "steps": steps,
                                             "stale": evaluation_is_stale(run_dir, evaluation),
                                             "trained_step": latest_checkpoint_step(Path(run_dir))})
    return evaluations
