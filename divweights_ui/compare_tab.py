"""The Compare tab: runs side by side (paper fig. 3 and 4), coverage and memorisation checks.

Thin: every number comes from core.evaluation.evaluate / core.evaluation.compare; this module declares components,
turns core results into figures and galleries, and wires two public endpoints:
`compare_runs` (read what is on disk: grids, saved evaluations) and `evaluate_run` (sample and
score the selected runs, then draw the coverage map, mass per class and nearest images).
"""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr
import numpy as np

from divweights.evaluation import compare
from divweights.evaluation.evaluate import EvalConfig, HIGHER_IS_BETTER, METRICS
from divweights.training.runs import read_config
from divweights.workbench import Workbench
from divweights_ui.common import error, image_array
from divweights_ui.figures import empty_figure, page_template
from divweights_ui.streaming import into_progress, stream, user_error

GPU = dict(concurrency_id="gpu", concurrency_limit=1)
VIS_SAMPLES = 300  # generated samples per run drawn on the map and counted per class
NEAREST_SHOWN = 4  # generated samples per run shown next to their nearest training image
THUMB = 84  # pixels: small images are enlarged (nearest neighbour) so strokes stay visible

INTRO = """Pick training runs to see them side by side. **Compare** shows their sample grids (the same
latent batch in every run) and any saved evaluation; **Evaluate** samples each run and measures
diversity (VS), fidelity and coverage (FID, precision/recall, IS, KID) and the distance to the
diversity-weighted target (wFID). Seeds of the same model are pooled: mean ± 95% CI."""

METRIC_HELP = {"vs": "diversity of the samples", "fid": "distance to the data", "wfid": "distance to the diversity-weighted data",
               "precision": "samples that look real", "recall": "data the samples cover", "is": "class spread (nats)",
               "kid": "unbiased distance to the data"}


def build_compare_tab(session_state: gr.State, wb: Workbench, tab: gr.Tab | None = None, validator=None) -> None:
    """Components and events of the Compare tab; call inside `with gr.Tab("Compare") as tab:`.
    Opening the tab lists the runs again (runs trained since the page loaded appear)."""
    bind = functools.partial
    gr.Markdown(INTRO)
    with gr.Row():
        # a CheckboxGroup, not a multiselect Dropdown: gradio 6.31's multiselect shows options picked
        # with the mouse but sends [] to the handler (keyboard picks arrive)
        choices = run_choices(wb)
        runs = gr.CheckboxGroup(choices, label="Runs", scale=5, elem_id="dw-compare-runs", info=runs_info(choices))
        refresh = gr.Button("Refresh list", scale=1, elem_id="dw-compare-refresh")
    with gr.Row():
        n_samples = gr.Number(value=2000, precision=0, minimum=50, label="Samples per run (evaluation)",
                              info=f"The paper uses {EvalConfig().n_samples:,}; fewer is quicker and noisier.",
                              elem_id="dw-compare-samples")
        compare_btn = gr.Button("Compare", variant="primary")
        evaluate_btn = gr.Button("Evaluate selected runs", elem_id="dw-compare-evaluate")
        stop_btn = gr.Button("Stop", variant="stop", scale=0, min_width=120)
    note = gr.Markdown("Tick runs above, then **Compare** (their grids and saved numbers, quick) or **Evaluate** "
                       "(sample and score them).", elem_id="dw-compare-note")
    # two grids a row in a box tall enough for them and their captions (a 4-column, auto-height gallery
    # clipped its 611 px grids in a 550 px box and hid the captions)
    grids = gr.Gallery(label="Sample grids (the same latent batch in every run)", columns=2, height=720,
                       object_fit="contain", elem_id="dw-compare-grids")
    table = gr.Markdown(elem_id="dw-compare-table")
    metric_plot = gr.Plot(label="Each metric per model")
    with gr.Row():
        coverage = gr.Plot(label="Coverage: generated samples on the data's map")
        mass = gr.Plot(label="Probability mass per class")
    nearest = gr.Gallery(label="Generated sample → nearest training image (memorisation check)", columns=8,
                         height="auto", object_fit="contain")

    refresh.click(bind(refresh_runs, wb=wb), inputs=runs, outputs=runs, api_visibility="private")
    if tab is not None:
        tab.select(bind(refresh_runs, wb=wb), inputs=runs, outputs=runs, api_visibility="private")
    compare_btn.click(bind(compare_runs, wb=wb), api_name="compare_runs",
                      inputs=[session_state, runs], outputs=[grids, table, metric_plot, note])
    evaluating = evaluate_btn.click(bind(evaluate_runs, wb=wb), api_name="evaluate_run",
                                    inputs=[session_state, runs, n_samples],
                                    outputs=[grids, table, metric_plot, coverage, mass, nearest, note],
                                    validator=validator, concurrency_id="evaluate", concurrency_limit=1)
    stop_btn.click(None, None, None, cancels=[evaluating], api_visibility="private")


# --- handlers ---------------------------------------------------------------------------------------


def run_choices(wb: Workbench) -> list[tuple[str, str]]:
    """(label shown, path relative to the data root) for every run."""
    choices = []
    for run in wb.comparable_runs():
        relative = str(Path(run["path"]).relative_to(wb.data_root))
        mark = {"current": " ✓ evaluated", "out of date": " ⚠ evaluation out of date"}.get(run["evaluated"], "")
        choices.append((f"{relative} — {run['label']} ({run['state']}){mark}", relative))
    return choices


def runs_info(choices: list) -> str:
    if not choices:
        return "No runs yet: start some in the Train tab (or python -m core study); they appear here."
    return "Studio runs and runs of studies (python -m core study) under the data root."


def refresh_runs(selected: list[str] | None = None, *, wb: Workbench):
    """The run list again, keeping the ticks of runs that still exist."""
    choices = run_choices(wb)
    present = {value for _, value in choices}
    return gr.CheckboxGroup(choices=choices, value=[run for run in selected or [] if run in present],
                            info=runs_info(choices))


def _selected_dirs(selected, wb: Workbench) -> list[Path]:
    if not selected:
        raise error("Pick at least one run.")
    try:  # names from the page stay under the data root
        dirs = [wb.user_path(name) for name in ([selected] if isinstance(selected, str) else selected)]
    except ValueError as exc:
        raise user_error(exc) from None
    missing = [d.name for d in dirs if not (d / "config.json").exists()]
    if missing:
        raise error(f"Not a training run: {', '.join(missing)}. Refresh the list.")
    return dirs


def compare_runs(session, selected, *, wb: Workbench):
    """Grids and saved evaluations of the selected runs (reads files only: quick)."""
    run_dirs = _selected_dirs(selected, wb)
    evaluations = wb.compare(run_dirs)
    waiting = [d.name for d in run_dirs if not (d / "eval.json").exists()]
    note = f"Not evaluated yet: {', '.join(waiting)} — press **Evaluate selected runs**." if waiting else ""
    note = "\n\n".join(filter(None, [warnings_markdown(run_dirs, evaluations), note]))
    return grid_gallery(run_dirs), table_markdown(evaluations), metrics_figure(evaluations), note


def evaluate_runs(session, selected, n_samples, *, wb: Workbench, progress=gr.Progress()):
    """Generator (Stop ends it between runs): sample and score each selected run trained on the same
    data as the first one (eval.json), then the coverage views of those runs."""
    run_dirs = _selected_dirs(selected, wb)
    config = _eval_config(session, n_samples)
    try:
        dataset = wb.run_dataset(run_dirs[0])
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise error(f"Cannot rebuild the data of {run_dirs[0].name}: {exc}") from None
    same_data = [d for d in run_dirs if _fingerprint(d) == dataset.fingerprint]
    p_target, target_name = _target_weights(session, dataset, same_data)
    yield from stream(lambda on_progress, should_stop: wb.evaluate(same_data, config, p_target, on_progress, should_stop),
                      into_progress(progress))
    views = wb.coverage(same_data, config, p_target, VIS_SAMPLES, NEAREST_SHOWN)
    skipped = [d.name for d in run_dirs if d not in same_data]
    evaluations = wb.compare(run_dirs)
    note = "\n\n".join(filter(None, [warnings_markdown(run_dirs, evaluations),
                                      _evaluate_note(config, target_name, skipped, views.method)]))
    yield (grid_gallery(run_dirs), table_markdown(evaluations), metrics_figure(evaluations), coverage_figure(views),
           mass_figure(views), nearest_gallery(views, dataset), note)


def _eval_config(session, n_samples) -> EvalConfig:
    """Metrics use the embedder of the session's weights when one is loaded (else pixels)."""
    n = int(n_samples or 0)
    if n < 50:
        raise error("Use at least 50 samples per run.")
    embedder = session.ready.embedder if getattr(session, "ready", None) is not None else "pixels"
    return EvalConfig.for_embedder(embedder, n_samples=n, kid_subset_size=min(EvalConfig.kid_subset_size, n))


def _fingerprint(run_dir: Path) -> str | None:
    return read_config(run_dir).get("dataset_fingerprint")


def _target_weights(session, dataset, run_dirs: list[Path]) -> tuple[np.ndarray | None, str]:
    """One diversity-weighted target for every run (so their wFIDs compare): the session's
    current weights when they belong to this dataset, else the weights of the first selected
    run that did not train on uniform weights, else none (wFID then equals FID)."""
    if getattr(session, "dataset", None) is not None and session.dataset.fingerprint == dataset.fingerprint:
        if session.current_p() is not None:
            return session.current_p(), "the diversity weights on the Weights tab"
    for run_dir in run_dirs:
        p = np.load(run_dir / "weights.npy", allow_pickle=False)
        if np.ptp(p) > 0:
            return p, f"the training weights of {run_dir.name}"
    return None, "uniform weights (no weighted run selected, so wFID equals FID)"


def _evaluate_note(config: EvalConfig, target_name: str, skipped: list[str], map_method: str) -> str:
    lines = [f"Features: **{config.embedder_name()}**; wFID and the target's class mass use {target_name}. "
             f"Map: **{map_method}** fitted on the real data."]
    if map_method == "PCA":
        lines.append("(PCA is used until UMAP has been compiled in this process — draw a UMAP on the Map tab once.)")
    if skipped:
        lines.append(f"Skipped (trained on different data than the first run): {', '.join(skipped)}.")
    return " ".join(lines)


# --- views --------------------------------------------------------------------------------------------


def grid_gallery(run_dirs: list[Path]) -> list[tuple[np.ndarray, str]]:
    items = []
    for run_dir in run_dirs:
        grid = compare.latest_grid(run_dir)
        if grid is not None:
            items.append((image_array(grid), f"{compare.run_label(run_dir)} · {run_dir.name} · {grid.stem}"))
    return items


def table_markdown(evaluations: list[dict]) -> str:
    if not evaluations:
        return "*No saved evaluations for these runs yet.*"
    head = ("| model | embedder | seeds | steps | "
            + " | ".join(f"{m} {'↑' if HIGHER_IS_BETTER[m] else '↓'}" for m in METRICS) + " |")
    lines = [head, "|" + "---|" * (4 + len(METRICS))]
    for row in compare.metric_table(evaluations):
        cells = [_mean_ci(*row[m], row["n_seeds"]) for m in METRICS]
        lines.append(f"| {row['model']} | {row['embedder']} | {row['n_seeds']} | {row['steps']} | " + " | ".join(cells) + " |")
    legend = "; ".join(f"**{m}**: {text}" for m, text in METRIC_HELP.items())
    return "\n".join(lines) + f"\n\nMean ± 95% CI over seeds (a single run shows its value). {legend}."


def _mean_ci(mean: float, ci: float, n_seeds: int) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.4g}" if n_seeds < 2 else f"{mean:.4g} ± {ci:.2g}"


def warnings_markdown(run_dirs: list[Path], evaluations: list[dict]) -> str:
    return "\n\n".join(f"⚠️ {warning}" for warning in compare.comparison_warnings(run_dirs, evaluations))


def metrics_figure(evaluations: list[dict]):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = compare.metric_table(evaluations)
    figure = make_subplots(rows=2, cols=4, subplot_titles=[f"{m} {'↑' if HIGHER_IS_BETTER[m] else '↓'}" for m in METRICS])
    for i, metric in enumerate(METRICS):
        figure.add_trace(go.Scatter(
            x=[r["model"] for r in rows], y=[r[metric][0] for r in rows], mode="markers",
            error_y={"type": "data", "array": [r[metric][1] for r in rows]}, showlegend=False,
            marker={"size": 9, "color": "#6d28d9"}), row=i // 4 + 1, col=i % 4 + 1)
        if not any(np.isfinite(r[metric][0]) for r in rows):  # e.g. IS without class labels: say so, not blank axes
            axis = "" if i == 0 else str(i + 1)
            figure.add_annotation(text="not measured", showarrow=False, x=0.5, y=0.5, xref=f"x{axis} domain",
                                  yref=f"y{axis} domain", font={"color": "#888"})
    figure.update_xaxes(tickangle=-25)  # model names in neighbouring panels would run into each other
    figure.update_layout(height=600, template=page_template(), margin=dict(l=40, r=20, t=50, b=40))
    return figure


def coverage_figure(views):
    """The training data's map with each model's samples placed on it (core.workbench.Coverage)."""
    import plotly.graph_objects as go

    real_xy, gen_xy, method = views.real_xy, views.gen_xy, views.method

    figure = go.Figure(go.Scattergl(x=real_xy[:, 0], y=real_xy[:, 1], mode="markers", name="training data",
                                    marker={"size": 4, "color": "#bbb"}))
    for label, xy in gen_xy.items():
        figure.add_trace(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode="markers", name=label, marker={"size": 5, "opacity": 0.7}))
    figure.update_layout(title=f"{method} of the training data; generated samples placed on it", height=460,
                         template=page_template(), margin=dict(l=40, r=20, t=50, b=40))
    return figure


def mass_figure(views):
    """Share of probability mass per class: data, the weighted target, each model (core.workbench.Coverage)."""
    import plotly.graph_objects as go

    if views.mass is None:
        return empty_figure("This dataset has no class labels, so there is no mass per class.", height=460)
    names = {"data": "data (uniform)", "target": "diversity-weighted target"}
    figure = go.Figure([go.Bar(x=views.classes, y=share, name=names.get(k, k)) for k, share in views.mass.items()])
    figure.update_layout(barmode="group", yaxis_title="share of probability mass", height=460, template=page_template(),
                         title="Mass per class: data, weighted target, models",
                         margin=dict(l=40, r=20, t=50, b=40))
    return figure


def nearest_gallery(views, dataset):
    """Each model's first samples next to their nearest training images (a memorisation check)."""
    items = []
    for label, image, index in views.nearest:
        items += [(_thumb(image), f"{label}: generated"), (_thumb(dataset.images[index]), f"nearest: {dataset.ids[index]}")]
    return items


def _thumb(image: np.ndarray):
    from PIL import Image

    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    scale = max(1, THUMB // max(picture.size))
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
