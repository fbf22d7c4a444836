"""The Export tab: the weights as files for your own training code (CSV, .npy + JSON, a sampler
snippet), and the images with their weights as a folder another training tool reads (Hugging Face
`datasets`, kohya sd-scripts, a resampled folder), with a zip of it to download."""

from __future__ import annotations

import functools
import os
import zipfile
from pathlib import Path

import gradio as gr

from divweights.data.storage import disk_full_message
from divweights.diversity.export_formats import TRAINER_FORMATS
from divweights.workbench import Workbench
from divweights_ui import handlers as h
from divweights_ui.common import error, require_weights
from divweights_ui.streaming import user_error

FORMAT_TITLES = {"imagefolder": "Hugging Face datasets (imagefolder + metadata.csv)",
                 "kohya": "kohya sd-scripts / LoRA (repeat folders + dataset_config.toml)",
                 "resampled": "Resampled folder (draws by p, for any folder-reading trainer)"}
FORMAT_HELP = ("Hugging Face: every image once, with weight and p columns your loader samples by. kohya: "
               "each image repeated in proportion to its weight. Resampled: images drawn by the weights, "
               "for trainers that only read a folder (StyleGAN2-ADA, diffusers).")
AMOUNT_HELP = "kohya: draws per pass (blank: 4 × images). Resampled: images to draw (blank: one per image)."


def build_export_tab(state: gr.State, wb: Workbench, batch_help: str) -> tuple[gr.File, gr.Code]:
    """The tab's components and events; -> (files, snippet), which other tabs mark out of date."""
    gr.Markdown("Save the weights for your own training code: a CSV for spreadsheets, a `.npy` "
                "array (with a JSON note of how it was made) and a PyTorch snippet that uses it.")
    export_batch = gr.Number(value=64, label="Batch size for the snippet", info=batch_help, precision=0, minimum=1)
    export_btn = gr.Button("Export weights", variant="primary")
    files = gr.File(label="Files", file_count="multiple", interactive=False, elem_id="dw-export-files")
    snippet = gr.Code("# Press “Export weights” to write the files; the snippet that uses them appears here.",
                      label="PyTorch sampler (DiversityWeightedSampler: one process or DDP)", language="python")
    gr.Markdown("### For a training tool\nThe images themselves, laid out the way another tool trains from them.")
    with gr.Row():
        kind = gr.Radio([(title, name) for name, title in FORMAT_TITLES.items()], value=TRAINER_FORMATS[0],
                        label="Format", info=FORMAT_HELP, elem_id="dw-trainer-format", scale=3)
        amount = gr.Number(value=None, label="Repeats / draws", info=AMOUNT_HELP, precision=0, minimum=1,
                           elem_id="dw-trainer-amount", scale=1)
    trainer_btn = gr.Button("Write the folder", elem_id="dw-trainer-export")
    trainer_text = gr.Markdown(elem_id="dw-trainer-text")
    trainer_file = gr.File(label="The folder as a zip", interactive=False, elem_id="dw-trainer-zip")
    trainer_code = gr.Code("# Write a folder to see how its tool reads it.", label="How to use it", language="python")

    export_btn.click(functools.partial(h.export_streamed, wb=wb), api_name="export_weights",
                     inputs=[state, export_batch], outputs=[files, snippet])
    trainer_btn.click(functools.partial(export_for_trainer, wb=wb), api_name="export_for_trainer",
                      inputs=[state, kind, amount], outputs=[trainer_text, trainer_file, trainer_code])
    return files, snippet


def export_for_trainer(session, kind: str, amount, *, wb: Workbench):
    """-> (summary, the folder zipped under generated/, how its tool reads it)."""
    result = require_weights(session)
    if kind not in TRAINER_FORMATS:
        raise error(f"Choose a format: {', '.join(TRAINER_FORMATS)}.")
    count = int(amount) if amount else None
    try:
        export = wb.export_for_trainer(session.dataset, result.p, kind, total=count if kind == "kohya" else None,
                                       draws=count if kind == "resampled" else None,
                                       features=session.features if kind == "imagefolder" else None)
        archive = zip_folder(export.folder)
    except OSError as exc:
        raise error(disk_full_message(exc, "the data root") or f"Could not write the export: {exc}.") from None
    except ValueError as exc:
        raise user_error(exc) from None
    where = export.folder.relative_to(wb.data_root)
    return f"**Written:** `{where}` under the data root. {export.summary}", str(archive), export.snippet


def zip_folder(folder: Path) -> Path:
    """<folder>.zip beside it (stored: PNGs do not compress), written atomically."""
    target = folder.with_suffix(".zip")
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, Path(folder.name) / path.relative_to(folder))
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
