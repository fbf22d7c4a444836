"""The Train tab: baseline, diversity-weighted and otherwise-weighted models (the paper's GAN or a
flow-matching model) as background runs, watched live.

Start: the workbench writes each run folder once (config.json, weights.npy) under
<data_root>/runs/ and starts `python -m core train --run-dir DIR`, which executes it. This tab only
creates, polls, stops and resumes those folders, so closing the browser or restarting the studio
never stops a run. Handlers are plain functions (tested directly); `build_train_tab` declares
components and wires events.
"""

from __future__ import annotations

import functools
import html
import json
import textwrap
from pathlib import Path

import gradio as gr
import numpy as np

from divweights.devices import cuda_available
from divweights.training import runs
from divweights.diversity.schemes import SchemeConfig
from divweights.training.config import PRESETS, TrainConfig
from divweights.workbench import Workbench
from divweights_ui.common import error, image_array
from divweights_ui.figures import empty_figure, page_template
from divweights_ui.streaming import user_error

GPU = dict(concurrency_id="gpu", concurrency_limit=1)
INTERNAL = dict(api_visibility="private")
POLL_S = 2.0  # seconds between refreshes of the runs table, chart and grids
MAX_PLOTTED = 8  # newest runs drawn in the chart and the grid gallery
TABLE_HEADERS = ["run", "state", "step", "weights", "preset", "message", "time left", "model"]
# shares of the table's width (they sum to 100%): at a 1280-px page every column stays on screen and long
# run ids and messages wrap inside their cells instead of widening the table
TABLE_WIDTHS = ["23%", "8%", "6%", "19%", "6%", "22%", "8%", "8%"]
MODEL_CHOICES = [("WGAN-GP (the paper's GAN)", "wgan-gp"), ("Flow matching (a U-Net, rectified flow)", "flow")]
OTHER_SCHEMES = ("class-balanced", "inverse-density", "leverage")  # core.diversity.schemes, beyond uniform / DivW
LOSS_PANELS = {"wgan-gp": (("wdist", "Wasserstein estimate (critic)"), ("loss_g", "Generator loss")),
               "flow": (("loss", "Flow-matching loss"), ("loss_var", "Variance of the per-image loss"))}

HELP = {
    "models": ("Every model is trained the same way (the model chosen on the right); only how often each real "
               "image is shown differs. The baseline shows all images equally often; a DivW run shows them "
               "according to the diversity weights you computed (one run per γ)."),
    "preset": "quick: a small CPU demo (minutes). paper: the paper's setting (GAN: batch 6,000, 6,000 steps; needs a GPU).",
    "model": ("The model family. Diversity weights only change which images a batch holds, so they apply to "
              "both: the paper's WGAN-GP, or a flow-matching model (steadier to train, sampled with a fixed-step ODE)."),
    "schemes": ("Simple reweightings to compare diversity weights against, one run each: equal mass per class "
                "(needs labels), more mass where the data is sparse (k nearest neighbours), or ridge leverage scores."),
    "device": "Where training runs. One run trains at a time; the others wait as 'queued'.",
    "steps": "Training steps: GAN generator steps or flow optimiser steps (blank: the preset's).",
    "batch": "Images per batch (blank: the preset's).",
}


# --- handlers ---------------------------------------------------------------------------------------

def weights_choices(session) -> list[tuple[str, str]]:
    """(label, key) for each diversity-weights result of the session."""
    results = session.weights if session is not None else {}
    return [(f"DivW γ={result.config.gamma:g} ({key})", key) for key, result in results.items()]


def sync_weights(session, known_keys: list[str] | None, selected: list[str] | None):
    """Follow the session's weights (computed in other tabs): update the choices only when the
    set of keys changed, keeping what the user ticked. Returns (choices update, known keys)."""
    choices = weights_choices(session)
    keys = [key for _, key in choices]
    if keys == list(known_keys or []):
        return gr.skip(), known_keys
    return gr.update(choices=choices, value=[k for k in selected or [] if k in keys]), keys


def preset_defaults(preset: str, model: str = "wgan-gp") -> tuple[int, int]:
    """(steps, batch size) of a model's preset: the numbers come from core.training.config, never a second copy."""
    config = TrainConfig.preset(preset, model=model)
    return config.steps, config.batch_size


def device_choices() -> list[str]:
    return ["cuda", "cpu"] if cuda_available() else ["cpu"]


def train_config(preset: str, device: str, steps, batch_size, model: str = "wgan-gp") -> TrainConfig:
    """The Train tab's values -> TrainConfig: the model's preset with steps, batch size and device."""
    if preset not in PRESETS:
        raise error(f"Unknown preset {preset!r}.")
    if model not in {value for _, value in MODEL_CHOICES}:
        raise error(f"Unknown model {model!r}.")
    overrides = {"device": device or "auto", "model": model}
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if value not in (None, ""):
            if int(value) < 1:
                raise error(f"{name.replace('_', ' ').capitalize()} must be at least 1.")
            overrides[name] = int(value)
    try:
        return TrainConfig.preset(preset, **overrides).validate()
    except ValueError as exc:
        raise user_error(exc) from None


def start_training(session, preset: str, device: str, steps, batch_size, include_baseline: bool,
                   weight_keys: list[str] | None, model: str = "wgan-gp", schemes: list[str] | None = None, *,
                   wb: Workbench):
    """Create a baseline run, one DivW run per chosen weights and one run per chosen other scheme (each
    folder written once by the workbench), then start each in the background; returns (message, runs table)."""
    if session is None or session.ready is None:
        raise error("Load a dataset first (Dataset tab).")
    weight_keys, schemes = list(weight_keys or []), list(schemes or [])
    missing = [key for key in weight_keys if key not in session.weights]
    if missing:
        raise error(f"These weights are no longer in this session: {', '.join(missing)}. Refresh the list.")
    if not include_baseline and not weight_keys and not schemes:
        raise error("Choose the baseline, at least one set of diversity weights, or another weighting.")
    config = train_config(preset, device, steps, batch_size, model)
    name = Path(str(session.spec.source)).name + ("-flow" if model == "flow" else "")
    models = [(None, "uniform", f"{name}-baseline", "uniform")] if include_baseline else []
    for key in weight_keys:
        result = session.weights[key]
        models.append((result.p, f"gamma={result.config.gamma:g} ({session.embedder})",
                       f"{name}-divw-g{result.config.gamma:g}", "diversity"))
    models += [scheme_model(session, scheme, name, wb) for scheme in schemes]
    started = []
    for p, label, run_name, scheme in models:
        try:
            run_dir = wb.create_run(session.spec, p, config, label=label, preset=preset, name=run_name,
                                    dataset=session.dataset, scheme=scheme)
            wb.start_run(run_dir)
        except (ValueError, OSError) as exc:  # OSError: a full disk (the half-made folder is already removed)
            if started:
                raise error(f"{user_error(exc).message} The run(s) {', '.join(started)} were started before "
                            "this one failed.") from None
            raise user_error(exc) from None
        started.append(run_dir.name)
    message = f"Started {len(started)} run(s): {', '.join(started)}. Runs train one at a time; the rest wait as queued."
    for key in weight_keys:  # weights that would show the generator the same few images: say so now
        health = wb.weight_health(session.weights[key].p, config.batch_size)
        if not health.healthy:
            message += f"\n\n⚠️ **γ = {session.weights[key].config.gamma:g}:** {health.message}"
    return message, runs_table(wb)


def scheme_model(session, scheme: str, name: str, wb: Workbench) -> tuple:
    """(p, label, run name, scheme) of a baseline weighting of the session's data (features, labels)."""
    if scheme not in OTHER_SCHEMES:
        raise error(f"Unknown weighting {scheme!r}.")
    if scheme == "class-balanced" and session.dataset.labels is None:
        raise error("Class-balanced weights need class labels, and this dataset has none.")
    try:
        result = wb.scheme_weights(session.features, session.dataset.labels, SchemeConfig(scheme), n=len(session.dataset))
    except ValueError as exc:
        raise user_error(exc) from None
    label = result.label if scheme == "class-balanced" else f"{result.label} ({session.embedder})"
    return result.p, label, f"{name}-{scheme}", scheme


def runs_table(wb: Workbench) -> list[list]:
    rows = []
    for run in wb.list_runs():
        step = f"{run['step']}/{run['steps']}" if run["steps"] else str(run["step"])
        rows.append([run["run_id"], run["state"], step, run["weights"], run["preset"] or "", run["message"],
                     _time_left(run["eta_s"]), run.get("model", "wgan-gp")])
    return rows


def _time_left(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"


def loss_figure(wb: Workbench, run_ids: list[str]):
    """Per logged step, one colour per run: the GAN's Wasserstein estimate and generator loss, a flow
    model's loss and the variance of its per-image loss (panel titles name what the runs shown hold)."""
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    if not run_ids:
        return empty_figure("No training runs yet: tick what to train above and press Start training.", height=360)
    models = {run_id: runs.read_json(wb.runs_root() / run_id / "config.json").get("train", {}).get("model", "wgan-gp")
              for run_id in run_ids}
    logged = {run_id: runs.read_metrics(wb.runs_root() / run_id) for run_id in run_ids}
    if not any(logged.values()):  # empty axes say nothing: say where each run stands instead
        lines = ["No losses logged yet."] + [_run_line(wb, run_id) for run_id in run_ids]
        return empty_figure("<br>".join(html.escape(part) for line in lines for part in textwrap.wrap(line, 100)),
                            height=360)
    shown = [m for m in LOSS_PANELS if m in models.values()]
    titles = [" · ".join(LOSS_PANELS[m][col][1] for m in shown) for col in (0, 1)]
    figure = make_subplots(rows=1, cols=2, subplot_titles=titles)
    for index, run_id in enumerate(run_ids):
        metrics = logged[run_id]
        steps = [m["step"] for m in metrics]
        colour = qualitative.D3[index % len(qualitative.D3)]
        for col, (key, _) in enumerate(LOSS_PANELS[models[run_id]], start=1):
            figure.add_scatter(x=steps, y=[m.get(key) for m in metrics], name=run_id, legendgroup=run_id,
                               showlegend=col == 1, line={"color": colour}, row=1, col=col)
    figure.update_xaxes(title_text="training step")
    figure.update_layout(height=360, margin={"l": 40, "r": 20, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25},
                         template=page_template())
    return figure


def _run_line(wb: Workbench, run_id: str) -> str:
    """'run: state — its whole message' (the table cuts long messages)."""
    status = runs.refresh_status(wb.runs_root() / run_id)
    return f"{run_id}: {status.get('state', 'unknown')} — {status.get('message', '')}"


def latest_grids(wb: Workbench, run_ids: list[str]) -> list[tuple[np.ndarray, str]]:
    """(image, caption) of each run's newest sample grid (same latents in every run)."""
    grids = []
    for run_id in run_ids:
        path = runs.latest_sample(wb.runs_root() / run_id)
        if path is not None:
            grids.append((image_array(path), f"{run_id} · step {int(path.stem.split('-')[1])}"))
    return grids


def list_runs(selected: str | None = None, *, wb: Workbench):
    """(runs table, loss chart, latest grids, run picker update) for every run under the data root.

    Listing also marks runs whose process died (and whose heartbeat went stale) as interrupted.
    """
    return _listing(runs_table(wb), selected, wb)


def _listing(table: list[list], selected: str | None, wb: Workbench):
    ids = [row[0] for row in table]
    shown = ids[:MAX_PLOTTED]
    picker = gr.update(choices=ids, value=selected if selected in ids else (ids[0] if ids else None))
    return table, loss_figure(wb, shown), latest_grids(wb, shown), picker


def listing_signature(table: list[list], selected: str | None, wb: Workbench) -> str:
    """What a listing would show, cheaply: the table, the chosen run, and each drawn run's newest
    metrics (file time) and sample grid (file name)."""
    files = []
    for row in table[:MAX_PLOTTED]:
        run_dir = wb.runs_root() / row[0]
        metrics = run_dir / "metrics.jsonl"
        sample = runs.latest_sample(run_dir)
        files.append([metrics.stat().st_mtime_ns if metrics.exists() else 0, sample.name if sample else ""])
    return json.dumps([table, selected, files], default=str)


def poll_runs(selected: str | None, seen: str | None, *, wb: Workbench):
    """Timer tick: list_runs(...) plus its signature when anything changed since `seen`, else skip
    every output. Redrawing the chart and the grids every tick costs the browser CPU that a weights
    run or a training run beside it needs, even while nothing changes."""
    table = runs_table(wb)
    signature = listing_signature(table, selected, wb)
    if signature == seen:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), seen
    return (*_listing(table, selected, wb), signature)


def _run_dir(wb: Workbench, run_id: str | None) -> Path:
    try:
        return wb.run_dir(run_id)
    except ValueError as exc:
        raise user_error(exc) from None


def stop_run(run_id: str, *, wb: Workbench) -> str:
    """Ask a run to checkpoint and exit (it finishes its current step first)."""
    try:
        wb.stop_run(_run_dir(wb, run_id))
    except ValueError as exc:
        raise user_error(exc) from None
    return f"Asked {run_id} to stop: it saves a checkpoint, then shows as interrupted."


def resume_run(run_id: str, *, wb: Workbench) -> str:
    """Continue an interrupted or failed run from its last good checkpoint, in a new process."""
    try:
        wb.resume_run(_run_dir(wb, run_id))
    except ValueError as exc:
        raise user_error(exc) from None
    return f"Resuming {run_id} from its last good checkpoint."


def delete_run(run_id: str, confirmed: bool, *, wb: Workbench) -> str:
    """Delete a run folder (checkpoints, grids, metrics): only when `confirmed` and not running."""
    run_dir = _run_dir(wb, run_id)
    if not confirmed:
        raise error("Tick the confirmation box to delete this run.")
    try:
        wb.delete_run(run_dir)
    except ValueError as exc:
        raise user_error(exc) from None
    return f"Deleted {run_id}."


# --- layout -----------------------------------------------------------------------------------------

def build_train_tab(session_state: gr.State, wb: Workbench) -> None:
    """Components and events of the Train tab (called inside `with gr.Tab("Train"):`)."""
    bind = functools.partial
    devices = device_choices()
    steps_default, batch_default = preset_defaults("quick")
    gr.Markdown("Train a model on your dataset: a **baseline** (every image equally often), **DivW** runs "
                "(images drawn by their diversity weights) and, to compare, other weightings. Runs continue in "
                "the background even if you close this page.")
    with gr.Row():
        with gr.Column(scale=2):
            include_baseline = gr.Checkbox(value=True, label="Baseline (uniform weights)", info=HELP["models"])
            initial = weights_choices(session_state.value)
            weight_keys = gr.CheckboxGroup(initial, label="DivW runs: diversity weights of this session (one run each)",
                                           elem_id="dw-train-weights")
            known_keys = gr.State([key for _, key in initial])
            schemes = gr.CheckboxGroup(list(OTHER_SCHEMES), label="Other weightings to compare (one run each)",
                                       info=HELP["schemes"], elem_id="dw-train-schemes")
        with gr.Column(scale=2):
            model = gr.Radio(MODEL_CHOICES, value="wgan-gp", label="Model", info=HELP["model"], elem_id="dw-train-model")
            with gr.Row():
                preset = gr.Radio(list(PRESETS), value="quick", label="Preset", info=HELP["preset"])
                device = gr.Radio(devices, value=devices[0], label="Device", info=HELP["device"])
            with gr.Row():
                steps = gr.Number(value=steps_default, label="Steps", info=HELP["steps"], precision=0, minimum=1,
                                  elem_id="dw-train-steps")
                batch_size = gr.Number(value=batch_default, label="Batch size", info=HELP["batch"], precision=0,
                                       minimum=1, elem_id="dw-train-batch")
            start_btn = gr.Button("Start training", variant="primary", elem_id="dw-train-start")
    message = gr.Markdown(elem_id="dw-train-message")
    table = gr.Dataframe(headers=TABLE_HEADERS, value=runs_table(wb), interactive=False, label="Runs", wrap=True,
                         column_widths=TABLE_WIDTHS, elem_id="dw-runs")
    with gr.Row():
        run_picker = gr.Dropdown([], label="Run", scale=3)
        stop_btn = gr.Button("Stop", variant="stop", scale=1)
        resume_btn = gr.Button("Resume", scale=1)
        delete_btn = gr.Button("Delete…", scale=1)
        refresh_btn = gr.Button("Refresh", scale=1)
    with gr.Row(visible=False) as confirm_row:
        confirm = gr.Checkbox(value=False, label="Yes, delete this run's checkpoints, samples and metrics")
        confirm_btn = gr.Button("Delete run", variant="stop")
        cancel_btn = gr.Button("Cancel")
    chart = gr.Plot(label="Losses", elem_id="dw-losses")
    grids = gr.Gallery(label="Latest samples (the same latent vectors in every run)", columns=2, height=720,
                       object_fit="contain", elem_id="dw-train-grids")

    listing = dict(inputs=[run_picker], outputs=[table, chart, grids, run_picker])
    list_fn = bind(list_runs, wb=wb)
    (start_btn.click(bind(start_training, wb=wb), api_name="start_training",
                     inputs=[session_state, preset, device, steps, batch_size, include_baseline, weight_keys, model,
                             schemes],
                     outputs=[message, table], **GPU)
     .success(list_fn, **listing, **INTERNAL))
    refresh_btn.click(list_fn, api_name="list_runs", **listing)
    seen = gr.State(None)  # signature of what the chart and grids show (poll_runs)
    timer = gr.Timer(POLL_S)
    timer.tick(bind(poll_runs, wb=wb), inputs=[run_picker, seen],
               outputs=[table, chart, grids, run_picker, seen], **INTERNAL)
    timer.tick(sync_weights, inputs=[session_state, known_keys, weight_keys], outputs=[weight_keys, known_keys],
               **INTERNAL)
    stop_btn.click(bind(stop_run, wb=wb), api_name="stop_run", inputs=[run_picker], outputs=[message])
    (resume_btn.click(bind(resume_run, wb=wb), api_name="resume_run", inputs=[run_picker],
                      outputs=[message], **GPU)
     .success(list_fn, **listing, **INTERNAL))
    delete_btn.click(lambda: (gr.update(visible=True), False), outputs=[confirm_row, confirm], **INTERNAL)
    cancel_btn.click(lambda: gr.update(visible=False), outputs=[confirm_row], **INTERNAL)
    (confirm_btn.click(bind(delete_run, wb=wb), api_name="delete_run", inputs=[run_picker, confirm],
                       outputs=[message])
     .success(lambda: (gr.update(visible=False), False), outputs=[confirm_row, confirm], **INTERNAL)
     .success(list_fn, **listing, **INTERNAL))
    for changed in (preset, model):
        changed.change(preset_defaults, inputs=[preset, model], outputs=[steps, batch_size], **INTERNAL)
