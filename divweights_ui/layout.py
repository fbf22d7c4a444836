"""The studio's page: components, help text and event wiring. `build_demo()` never launches and
never computes: the start dataset is prepared in the background (divweights_ui.startup).

Each action has a stable api_name (see README): load_dataset, compute_weights, sweep_gamma,
top_bottom, umap, select_points, export_weights, export_for_trainer; suggest_gamma, why_weight, modes, browse_weights and
the Learn tab's learn_example, learn_example_run, learn_mixture. Each handler is UI values -> one workbench call ->
what the page shows. GPU-bound events share one queue slot.
"""

from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr

from divweights.data.datasets import list_builtins
from divweights.diversity.weights import WeightsConfig
from divweights.workbench import Workbench
from divweights_ui import figures, handlers as h
from divweights_ui.common import (DEFAULT_MAP_POINTS, DEFAULT_SWEEP, EMBEDDERS, MAX_MAP_POINTS, SOURCES,
                                  StartupChoice, builtin_subset_fields, per_class_text)
from divweights_ui.compare_tab import build_compare_tab
from divweights_ui import explain_handlers as explain
from divweights_ui.export_tab import build_export_tab
from divweights_ui.learn_tab import build_learn_tab
from divweights_ui.job_limit import JobLimit
from divweights_ui.map_handlers import draw_map_streamed, recolour_map, select_points, select_points_quietly
from divweights_ui.session import Session, release_expired
from divweights_ui.startup import StartSet, adopt_start
from divweights_ui.train_tab import build_train_tab
from divweights_ui.weights_handlers import (compare_schemes, compute_weights, export_scheme, show_weights,
                                            stopped as weights_stopped, sweep)

GPU = dict(concurrency_id="gpu", concurrency_limit=1)  # embedding and weights share the accelerator
INTERNAL = dict(api_visibility="private")  # chained refreshes: not part of the public API
SESSION_TTL_S = 2 * 3600  # seconds a session's data is kept after its last action

INTRO = """# divweights studio
Make a generative model see **every kind of image as often as every other**. Each training image
gets a *diversity weight*: rare-looking images are drawn more often, near-duplicates less
(Berns, Colton & Guckelsberger 2023, “mode balancing”). A “kind” is visual variety as the embedder
sees it, not a class label, so the class shares may move away from 50/50. Diversity is measured by
the **Vendi Score**: the effective number of distinct images. Load images → compute weights → look
at what they favour → export them for training."""

HELP = {
    "source": "A built-in set, a .zip/.npy/.npz you upload, or a folder you put under the data root.",
    "builtin": "Built-in image sets. Greyed names are not on this machine.",
    "classes": "Pick classes to study a class pair like the paper (e.g. 0, 1). Leave blank for all classes.",
    "per_class": "How many images of each chosen class (blank = all). 1,000 keeps things quick.",
    "seed": "Which random subset is drawn; the same seed always gives the same images.",
    "folder": "A folder of images inside the data root; subfolders are searched too.",
    "subfolders": "Label each image by the top-level folder it is in (cats/…, dogs/…): then classes can be picked.",
    "embedder": ("How images are turned into feature vectors. Diversity is measured between these vectors: "
                 "CLIP (ViT-L-14/openai, the paper's choice) compares what images look like to people; "
                 "'pixels' works offline but only compares raw pixels; 'precomputed' uses features you supplied."),
    "gamma": ("How hard to push for diversity. 0 = leave every image equally likely; 1 = only maximise "
              "diversity (a few unusual images may dominate). The paper uses 0.8."),
    "steps": "Optimisation steps. More steps = closer to the best weights, slower.",
    "lr": "Step size of the optimiser. Lower if the chart jumps around.",
    "sweep": "Several γ values computed together, to see the trade-off before choosing one.",
    "export_scheme": ("The same CSV, .npy and JSON files as the Export tab, for a simple weighting "
                      "(diversity weights: the Export tab)."),
    "k": "How many of the most- and least-favoured images to show.",
    "batch": "Your training batch size: used for the 'repeats in a batch' number and the code snippet.",
    "method": "UMAP keeps similar images close together (best); PCA is instant but cruder.",
    "size": "Draw heavily-weighted images as bigger dots.",
    "colour": "Colour each dot by its weight (× the uniform share) or by its class label.",
    "max_points": "At most this many dots are drawn (a fixed random sample of large sets); the weights always use every image.",
    "selection": "Filled in when you draw a box or lasso on the map; you can also type indices like 3, 17, 200-220.",
    "min_ess": "Keep at least this share of the images' worth (effective sample size). 25% is a safe start.",
    "max_ratio": "Optional: no image drawn more than this many times as often as without weights.",
    "why_index": "Which image to explain (click one in a gallery on this tab to fill this in).",
    "why_k": "How many of its most similar images to show: many near-duplicates = a low weight.",
    "n_modes": "How many of the strongest modes get a row of their images.",
}


def _builtin_choices(data_root: Path) -> list[tuple[str, str]]:
    return [(row["name"] + ("" if row["available"] else " (not on this machine)"), row["name"])
            for row in list_builtins(data_root)]


def _source_fields(source_kind: str, builtin_name: str):
    """Show only the input that matches where the images come from. Class numbers belong to a
    built-in set: a switch to the user's own images empties them (their images may have no
    labels), a switch back gives the chosen built-in's own start (all of Fashion-MNIST would be 60,000)."""
    builtin = source_kind == SOURCES[0]
    classes, per_class = builtin_subset_fields(builtin_name) if builtin else ("", None)
    return (gr.update(visible=builtin), gr.update(visible=source_kind == SOURCES[1]),
            gr.update(visible=source_kind == SOURCES[2]), gr.update(value=classes), gr.update(value=per_class_text(per_class)),
            gr.update(visible=not builtin))


def _builtin_fields(builtin_name: str):
    """Another built-in: its own class pair and count (digits' 1,797 images have no 1,000 per class)."""
    classes, per_class = builtin_subset_fields(builtin_name)
    return gr.update(value=classes), gr.update(value=per_class_text(per_class))


def build_demo(data_root=None, default: StartupChoice | str | None = "auto", extra_tabs: bool = True,
               session_ttl_s: float = SESSION_TTL_S) -> gr.Blocks:
    """The studio as a gr.Blocks. default: "auto" (best built-in), a StartupChoice, or None (empty).
    The start dataset is prepared on a background thread (`demo.start_set`, a StartSet).

    extra_tabs: add the Train and Compare tabs. session_ttl_s: a session's data is freed this long after
    its last action (the load benchmark shortens it to see the release).
    """
    wb = Workbench(data_root)  # confined: every path from the page stays under the data root
    data_root = wb.data_root
    choice = h.default_choice(data_root) if default == "auto" else default
    start = StartSet(wb, choice).start()
    bind = functools.partial  # handlers get the workbench as a keyword
    wc = WeightsConfig()
    limit = JobLimit()  # long jobs: at most MAX_JOBS_PER_SESSION per page

    with gr.Blocks(title="divweights studio") as demo:
        # a session's own data, and what gradio keeps for its page, is freed once it has been idle
        # session_ttl_s, or an hour after its page closed; its runs live on in their folders
        state = gr.State(Session(), time_to_live=session_ttl_s,
                         delete_callback=functools.partial(release_expired, demo=demo))
        gr.Markdown(INTRO)
        notice = gr.Markdown(start.status_markdown() if choice else "", elem_id="dw-notice")
        with gr.Tabs():
            with gr.Tab("Dataset"):
                with gr.Row():
                    with gr.Column(scale=2):
                        source_kind = gr.Radio(list(SOURCES), value=SOURCES[0], label="Images from", info=HELP["source"])
                        builtin = gr.Dropdown(_builtin_choices(data_root), value=choice.source if choice else "digits",
                                              label="Built-in set", info=HELP["builtin"], elem_id="dw-builtin")
                        with gr.Row():
                            classes = gr.Textbox(value=",".join(map(str, choice.classes)) if choice and choice.classes else "",
                                                 label="Classes", info=HELP["classes"], placeholder="all",
                                                 elem_id="dw-classes")
                            # a text box: gradio's number field shows 0 for "no value", which read as "0 images"
                            per_class = gr.Textbox(value=per_class_text(choice.per_class if choice else None),
                                                   label="Images per class", info=HELP["per_class"], placeholder="all",
                                                   elem_id="dw-per-class")
                            seed = gr.Number(value=0, label="Seed", info=HELP["seed"], precision=0)
                        upload = gr.File(label="Upload (.zip of images, or .npy/.npz arrays)", type="filepath",
                                         file_types=[".zip", ".npy", ".npz"], visible=False, elem_id="dw-upload")
                        folder = gr.Textbox(label=f"Folder under the data root ({data_root})", info=HELP["folder"],
                                            placeholder="my_images", visible=False, elem_id="dw-folder")
                        subfolders = gr.Checkbox(value=False, label="Subfolders are classes", visible=False,
                                                 info=HELP["subfolders"], elem_id="dw-subfolders")
                        embedder = gr.Dropdown(list(EMBEDDERS), value=choice.embedder if choice else "pixels",
                                               allow_custom_value=True, label="Embedder", info=HELP["embedder"])
                        with gr.Row():
                            load_btn = gr.Button("Load dataset", variant="primary", elem_id="dw-load")
                            load_stop = gr.Button("Stop", variant="stop", scale=0, min_width=120)
                    with gr.Column(scale=3):
                        summary = gr.Markdown("The start dataset is being prepared…" if choice else
                                              "No dataset loaded yet.", elem_id="dw-summary")
                        preview = gr.Gallery(label="A few of the images", columns=6, elem_id="dw-preview",
                                             object_fit="contain", height=440)
            with gr.Tab("Weights"):
                with gr.Row():
                    gamma = gr.Slider(0, 1, value=wc.gamma, step=0.05, label="γ (diversity strength)",
                                      info=HELP["gamma"], elem_id="dw-gamma")
                    # no minimum=/maximum= on the inputs of validated events (weights, sweep, suggest γ): gradio
                    # checks them while the job-limit validator runs, and gradio_client then gets a bare
                    # "400 Bad Request"; the handlers refuse out-of-range values with a sentence instead
                    steps = gr.Number(value=wc.steps, label="Steps", info=HELP["steps"], precision=0,
                                      elem_id="dw-steps")
                    lr = gr.Number(value=wc.lr, label="Learning rate", info=HELP["lr"])
                with gr.Row():
                    compute_btn = gr.Button("Compute weights", variant="primary", elem_id="dw-compute")
                    stop_btn = gr.Button("Stop", variant="stop", scale=0, min_width=160, elem_id="dw-stop")
                numbers = gr.Markdown(elem_id="dw-numbers")
                gr.Markdown("*ESS (effective sample size) = how many equally-used images the weighted dataset is "
                            "worth. Diversity weights trade some ESS for a higher Vendi Score (diversity).*")
                live = gr.Plot(label="Live: diversity per step", elem_id="dw-live")
                with gr.Accordion("Suggest γ: the largest γ whose weights stay healthy for training", open=True):
                    with gr.Row():
                        min_ess = gr.Number(value=25, label="Minimum ESS (% of the images)", info=HELP["min_ess"],
                                            elem_id="dw-min-ess")
                        max_ratio = gr.Number(value=0, label="Largest weight at most (× uniform; 0 = no limit)",
                                              info=HELP["max_ratio"], elem_id="dw-max-ratio")
                        suggest_btn = gr.Button("Suggest γ", elem_id="dw-suggest", scale=0, min_width=160)
                    suggest_text = gr.Markdown(elem_id="dw-suggest-text")
                    suggest_plot = gr.Plot(label="γ search", elem_id="dw-suggest-plot")
                with gr.Accordion("γ sweep: see the trade-off before choosing", open=False):
                    gammas = gr.Textbox(value=DEFAULT_SWEEP, label="γ values", info=HELP["sweep"])
                    sweep_btn = gr.Button("Run sweep")
                    sweep_plot = gr.Plot(label="Trade-off")
                    sweep_table = gr.Markdown()
                with gr.Accordion("Other weightings side by side: is it better than the simple fix?", open=False):
                    schemes_btn = gr.Button("Compare weighting schemes", elem_id="dw-schemes-compare")
                    schemes_table = gr.Markdown(elem_id="dw-schemes-table")
                    with gr.Row():
                        scheme_pick = gr.Dropdown(["uniform", "class-balanced", "inverse-density", "leverage"],
                                                  value="class-balanced", label="Export a weighting", scale=2,
                                                  info=HELP["export_scheme"])
                        scheme_export_btn = gr.Button("Export", scale=1)
                    scheme_files = gr.File(label="Files (CSV, .npy, JSON)", file_count="multiple")
            with gr.Tab("Inspect"):
                with gr.Row():
                    k = gr.Slider(1, 48, value=12, step=1, label="Examples to show", info=HELP["k"])
                    batch = gr.Number(value=64, label="Batch size", info=HELP["batch"], precision=0, minimum=1)
                    inspect_btn = gr.Button("Refresh")
                stats = gr.Markdown(elem_id="dw-stats")
                gr.Markdown("Captions: **#index · weight · class**; the weight is × the uniform share "
                            "(2× = drawn twice as often as without weights).")
                with gr.Row():
                    top_gallery = gr.Gallery(label="Most favoured (highest weight): drawn more often", columns=4,
                                             elem_id="dw-top", object_fit="contain", height=480)
                    bottom_gallery = gr.Gallery(label="Least favoured (lowest weight): drawn less often", columns=4,
                                                elem_id="dw-bottom", object_fit="contain", height=480)
                with gr.Row():
                    hist = gr.Plot(label="Weight histogram (click a bar: its images on the Map tab)",
                                   elem_id="dw-hist")
                    mass = gr.Plot(label="Mass per class")
                gr.Markdown("### Why this weight?\nClick any image on this tab, or type its index.")
                with gr.Row():
                    why_index = gr.Number(value=None, label="Image #", precision=0, minimum=0, elem_id="dw-why-index",
                                          info=HELP["why_index"])
                    why_k = gr.Slider(1, 24, value=6, step=1, label="Nearest neighbours shown", info=HELP["why_k"])
                    why_btn = gr.Button("Explain", scale=0, min_width=140, elem_id="dw-why-btn")
                why_text = gr.Markdown(explain.WHY_HINT, elem_id="dw-why")
                why_gallery = gr.Gallery(label="The image and its nearest neighbours (cosine similarity of the features)",
                                         columns=7, height=230, elem_id="dw-why-neighbours", object_fit="contain")
                with gr.Accordion("Modes: the directions of variety the weights even out", open=False):
                    with gr.Row():
                        n_modes = gr.Slider(1, 8, value=4, step=1, label="Modes with images", info=HELP["n_modes"])
                        per_mode = gr.Slider(4, 12, value=8, step=1, label="Images per mode",
                                             info="One row of images per mode.")
                        modes_btn = gr.Button("Show modes", scale=0, min_width=160, elem_id="dw-modes-btn")
                    modes_text = gr.Markdown(elem_id="dw-modes-text")
                    modes_plot = gr.Plot(label="Share of the variety per mode", elem_id="dw-modes-plot")
                    modes_gallery = gr.Gallery(label="Images furthest along each mode (one row per mode)", columns=8,
                                               height=640, elem_id="dw-modes-gallery", object_fit="contain")
                with gr.Accordion("Browse every image by weight", open=False):
                    with gr.Row():
                        order = gr.Radio(list(explain.ORDERS), value=explain.ORDERS[0], label="Order",
                                         info="Sort every image by its weight.")
                        browse_class = gr.Dropdown([explain.ALL_CLASSES], value=explain.ALL_CLASSES, label="Class",
                                                   elem_id="dw-browse-class", info="Only the images of one class.")
                        page = gr.Number(value=1, precision=0, minimum=1, label="Page", elem_id="dw-browse-page",
                                         info=f"{explain.PER_PAGE} images a page; type a page and press Enter.")
                        prev_btn = gr.Button("◀ Previous", scale=0, min_width=160)
                        next_btn = gr.Button("Next ▶", scale=0, min_width=160, elem_id="dw-browse-next")
                    browse_text = gr.Markdown(elem_id="dw-browse-text")
                    browse_gallery = gr.Gallery(label="48 images per page", columns=8, height=640,
                                                elem_id="dw-browse", object_fit="contain")
            with gr.Tab("Map"):
                with gr.Row():
                    method = gr.Radio(["UMAP", "PCA"], value="UMAP", label="Layout", info=HELP["method"])
                    colour = gr.Radio(["weight", "class"], value="weight", label="Colour by", info=HELP["colour"])
                    size = gr.Checkbox(value=False, label="Dot size by weight", info=HELP["size"])
                    max_points = gr.Slider(500, MAX_MAP_POINTS, value=DEFAULT_MAP_POINTS, step=500, label="Dots drawn",
                                           info=HELP["max_points"])
                    draw_btn = gr.Button("Draw map", variant="primary")
                    map_stop = gr.Button("Stop", variant="stop", scale=0, min_width=90)
                map_note = gr.Markdown()
                gr.Markdown("Hover a dot to see its image; drag a **lasso** (or choose box select in the plot's "
                            "toolbar) to show the selected images below.")
                map_plot = gr.Plot(figures.empty_figure("Loading the map…"), label="Map", elem_id="dw-map")
                with gr.Row():
                    selection = gr.Textbox(label="Selected indices", info=HELP["selection"], elem_id="dw-selection",
                                           scale=4)
                    select_btn = gr.Button("Show selection", scale=1)
                selection_note = gr.Markdown()
                selection_gallery = gr.Gallery(label="Selected images", columns=10, height=420,
                                               elem_id="dw-selected", object_fit="contain")
            with gr.Tab("Export"):
                files, snippet = build_export_tab(state, wb, HELP["batch"])
            with gr.Tab("Learn") as learn_tab:
                build_learn_tab(learn_tab, limit)
            if extra_tabs:
                with gr.Tab("Train"):
                    build_train_tab(state, wb)
                with gr.Tab("Compare") as compare_tab:
                    build_compare_tab(state, wb, compare_tab, validator=limit.evaluate)

        # ---- wiring
        source_kind.change(_source_fields, inputs=[source_kind, builtin],
                           outputs=[builtin, upload, folder, classes, per_class, subfolders], **INTERNAL)
        builtin.input(_builtin_fields, inputs=[builtin], outputs=[classes, per_class], **INTERNAL)
        inspect_io = dict(inputs=[state, k, batch], outputs=[top_gallery, bottom_gallery, hist, mass, stats])
        weights_io = dict(inputs=[state, gamma, steps, lr], outputs=[state, live, numbers])
        explain_io = dict(outputs=[why_text, why_gallery, modes_text, modes_plot, modes_gallery], **INTERNAL)
        browse_io = dict(outputs=[browse_gallery, page, browse_text])
        browse_inputs = [state, order, browse_class, page]
        recolour_io = dict(inputs=[state, method, size, max_points, colour], outputs=[state, map_plot, map_note])

        # first the panels that show the old weights say so, then the job (gradio runs one trigger's
        # listeners one after another, so the mark must come first in the chain)
        stale_io = dict(outputs=[top_gallery, bottom_gallery, hist, mass, stats, map_note, files, snippet], **INTERNAL)
        loading = load_btn.click(h.stale_panels, **stale_io).then(
            bind(h.load_dataset, wb=wb), api_name="load_dataset",
            inputs=[state, source_kind, builtin, classes, per_class, seed, upload, folder, embedder, subfolders],
            outputs=[state, summary, notice], validator=limit.load, **GPU)
        (loading.success(bind(h.dataset_preview, wb=wb), inputs=[state], outputs=[preview], **INTERNAL)
         .success(explain.class_choices, inputs=[state], outputs=[browse_class], **INTERNAL)
         .success(bind(compute_weights, wb=wb), **weights_io, **GPU, **INTERNAL)
         .success(bind(h.top_bottom, wb=wb), **inspect_io, **INTERNAL)
         .success(explain.clear_explanations, **explain_io)
         .success(bind(explain.browse_if_weighted, wb=wb), inputs=browse_inputs, **browse_io, **INTERNAL)
         .success(bind(recolour_map, wb=wb), **recolour_io, **INTERNAL))
        load_stop.click(None, None, None, cancels=[loading], **INTERNAL)
        compute = compute_btn.click(h.stale_panels, **stale_io).then(
            bind(compute_weights, wb=wb), api_name="compute_weights", **weights_io, **GPU, validator=limit.weights)
        (compute.success(bind(h.top_bottom, wb=wb), **inspect_io, **INTERNAL)
         .success(explain.clear_explanations, **explain_io)
         .success(bind(explain.browse_if_weighted, wb=wb), inputs=browse_inputs, **browse_io, **INTERNAL)
         .success(bind(recolour_map, wb=wb), **recolour_io, **INTERNAL))
        sweeping = sweep_btn.click(bind(sweep, wb=wb), api_name="sweep_gamma",
                                   inputs=[state, gammas, steps, lr, gamma], outputs=[state, sweep_plot, sweep_table],
                                   validator=limit.sweep, **GPU)
        (stop_btn.click(weights_stopped, inputs=[state], outputs=[numbers, sweep_table], cancels=[compute, sweeping],
                        **INTERNAL)  # then the panels show the weights still in use again
         .then(bind(h.top_bottom_if_weighted, wb=wb), **inspect_io, **INTERNAL)
         .then(bind(recolour_map, wb=wb), **recolour_io, **INTERNAL))
        schemes_btn.click(bind(compare_schemes, wb=wb), api_name="compare_schemes", inputs=[state, gamma, steps, lr],
                          outputs=[schemes_table], validator=limit.weights, **GPU)
        scheme_export_btn.click(bind(export_scheme, wb=wb), api_name="export_scheme", inputs=[state, scheme_pick],
                                outputs=[scheme_files])
        inspect_btn.click(bind(h.top_bottom, wb=wb), api_name="top_bottom", **inspect_io)
        k.release(bind(h.top_bottom, wb=wb), **inspect_io, **INTERNAL)
        drawing = draw_btn.click(bind(draw_map_streamed, wb=wb), api_name="umap",
                                 inputs=[state, method, size, max_points, colour], outputs=[state, map_plot, map_note])
        map_stop.click(None, None, None, cancels=[drawing], **INTERNAL)  # the PCA map shown meanwhile stays
        size.change(bind(recolour_map, wb=wb), **recolour_io, **INTERNAL)
        colour.change(bind(recolour_map, wb=wb), **recolour_io, **INTERNAL)
        select_io = dict(inputs=[state, selection], outputs=[selection_gallery, selection_note])
        select_btn.click(bind(select_points, wb=wb), api_name="select_points", **select_io)
        # typing: a half-typed or out-of-range selection is said in the note, not raised (one toast from the button)
        selection.change(bind(select_points_quietly, wb=wb), trigger_mode="always_last", **select_io, **INTERNAL)
        suggest_btn.click(bind(explain.suggest, wb=wb), api_name="suggest_gamma",
                          inputs=[state, min_ess, max_ratio, steps, lr], outputs=[state, gamma, suggest_plot, suggest_text],
                          validator=limit.sweep, **GPU)
        why_io = dict(inputs=[state, why_index, why_k], outputs=[why_text, why_gallery])
        why_btn.click(bind(explain.why_weight_streamed, wb=wb), api_name="why_weight", **why_io)
        why_index.submit(bind(explain.why_weight_streamed, wb=wb), **why_io, **INTERNAL)
        for clickable in (top_gallery, bottom_gallery, browse_gallery, modes_gallery, why_gallery):
            clickable.select(explain.why_on_select(wb), inputs=[state, why_k],
                             outputs=[why_index, why_text, why_gallery], **INTERNAL)
        modes_btn.click(bind(explain.show_modes, wb=wb), api_name="modes", inputs=[state, n_modes, per_mode],
                        outputs=[modes_plot, modes_gallery, modes_text])
        browse_btn_fn = bind(explain.browse, wb=wb)
        page.submit(browse_btn_fn, inputs=browse_inputs, api_name="browse_weights", **browse_io)
        order.change(browse_btn_fn, inputs=browse_inputs, **browse_io, **INTERNAL)
        browse_class.change(browse_btn_fn, inputs=browse_inputs, **browse_io, **INTERNAL)
        prev_btn.click(bind(explain.browse_step, delta=-1, wb=wb), inputs=browse_inputs, **browse_io, **INTERNAL)
        next_btn.click(bind(explain.browse_step, delta=1, wb=wb), inputs=browse_inputs, **browse_io, **INTERNAL)

        # the page is served at once; the start set fills it in when ready (waiting costs no worker slot)
        (demo.load(bind(adopt_start, start=start), inputs=[state], outputs=[state, notice], concurrency_limit=None,
                   show_progress="hidden", **INTERNAL)
         .then(h.start_fields, inputs=[state], outputs=[summary, embedder], **INTERNAL)
         .then(bind(h.dataset_preview, wb=wb), inputs=[state], outputs=[preview], **INTERNAL)
         .then(bind(show_weights, wb=wb), inputs=[state], outputs=[live, numbers], **INTERNAL)
         .then(explain.class_choices, inputs=[state], outputs=[browse_class], **INTERNAL)
         .then(bind(explain.browse_if_weighted, wb=wb), inputs=browse_inputs, **browse_io, **INTERNAL)
         .then(bind(h.top_bottom_if_weighted, wb=wb), **inspect_io, **INTERNAL)
         .then(bind(recolour_map, wb=wb), **recolour_io, **INTERNAL))
    demo.start_set = start  # tests and benchmarks wait on it
    demo.workbench = wb  # the benchmarks read its shared data cache
    limit.demo = demo
    return demo
