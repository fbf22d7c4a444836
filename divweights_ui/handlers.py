"""Dataset, Inspect and Export handlers: UI values -> one workbench call -> what the UI shows.

Every handler takes the per-session `Session` first and returns plain values (markdown strings,
plotly figures, gallery lists). Bad input raises `gr.Error` with a plain sentence *before* the
session is touched, so the user keeps what they had. The workbench is bound by
`layout.build_demo` with functools.partial.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import gradio as gr
import numpy as np

from divweights.data.dataset import label_names
from divweights.data.datasets import DatasetSpec, list_builtins
from divweights.data.embed import EmbedConfig, WeightsUnavailable, resolve_weights
from divweights.data.ingest import check_uploads_quota
from divweights.data.storage import atomic_copy, disk_full_message, file_digest
from divweights.diversity.weights import WeightsConfig
from divweights.workbench import Workbench
from divweights_ui import figures
from divweights_ui.common import (BUILTIN_SUBSETS, MAX_UPLOAD_MB, PAPER_EMBEDDER, SOURCES, StartupChoice, error, gallery, parse_classes,
                                  parse_per_class, require_weights, weights_key)
from divweights_ui.explain_handlers import current_explanation, health_note, with_explanation
from divweights_ui.session import Session
from divweights_ui.streaming import into_progress, stream, user_error

# ----------------------------------------------------------------------------- dataset


def default_choice(data_root: Path) -> StartupChoice:
    """Fashion-MNIST T-shirt/Trouser pair (1,000 each) if its files are here, else digits; pixel
    features (quick to tell: no open_clip import). `clip_if_cached` upgrades the embedder later."""
    available = {row["name"] for row in list_builtins(data_root) if row["available"]}
    name = "fashion-mnist" if "fashion-mnist" in available else "digits"
    return StartupChoice(name, *BUILTIN_SUBSETS[name])


def clip_if_cached(choice: StartupChoice) -> StartupChoice:
    """The paper's CLIP ViT-L/14 when its weights are cached locally (no download at start)."""
    try:
        paper = EmbedConfig.parse(PAPER_EMBEDDER)
        checkpoint, _ = resolve_weights(paper.model, paper.pretrained)
        if checkpoint and Path(checkpoint).is_file():
            choice.embedder = PAPER_EMBEDDER
    except (WeightsUnavailable, ValueError, ImportError):
        pass
    return choice


def _store_upload(upload: str, data_root: Path) -> tuple[str, Path | None]:
    """Copy a gradio upload to <data_root>/uploads/<digest>/<its name> (content-addressed, never
    overwriting; the name is kept so that messages speak of the user's file).

    -> (path relative to the data root, the folder this call created or None when already stored).
    """
    source = Path(upload)
    if source.stat().st_size > MAX_UPLOAD_MB * 1024 * 1024:
        raise error(f"That file is larger than {MAX_UPLOAD_MB} MB.")
    digest = file_digest(source)
    folder = Path(data_root) / "uploads" / digest
    target = folder / source.name
    created = None if folder.exists() else folder
    if not (target.exists() and file_digest(target) == digest):  # absent, or torn by an earlier full disk
        try:
            check_uploads_quota(data_root, source.stat().st_size, source.name)
        except ValueError as exc:
            raise user_error(exc) from None
        try:
            atomic_copy(source, target, digest)
        except OSError as exc:
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise error(disk_full_message(exc, "the data root") or f"Could not store {source.name}: {exc}.") from exc
    return str(target.relative_to(data_root)), created


def _resolve_source(source_kind: str, builtin: str, upload, folder: str, data_root: Path) -> tuple[str, Path | None]:
    """-> (dataset source, the upload folder this call created, to remove if the data is refused)."""
    if source_kind == SOURCES[0]:
        return builtin, None
    if source_kind == SOURCES[1]:
        if not upload:
            raise error("Choose a .zip, .npy or .npz file to upload first.")
        return _store_upload(upload if isinstance(upload, str) else upload.name, data_root)
    if not (folder or "").strip():
        raise error("Type a folder path relative to the data root, e.g. my_images.")
    return folder.strip(), None


def _spec_and_embedder(classes: str, per_class, seed, source: str, embedder: str,
                       subfolders: bool = False) -> tuple[DatasetSpec, EmbedConfig]:
    try:
        spec = DatasetSpec(source, parse_classes(classes), parse_per_class(per_class), int(seed or 0),
                           subfolders_as_classes=bool(subfolders))
        return spec, EmbedConfig.parse(embedder)
    except (TypeError, ValueError) as exc:
        raise user_error(exc) from None


def load_dataset(session: Session, source_kind: str, builtin: str, classes: str, per_class, seed,
                 upload, folder: str, embedder: str, subfolders: bool = False, *, wb: Workbench,
                 progress=gr.Progress()):
    """Dataset tab (a generator, so Stop can end the embedding) -> (session, summary, notice).
    subfolders: an upload's or folder's top-level subfolders are its classes (ignored for built-ins)."""
    source, stored = _resolve_source(source_kind, builtin, upload, folder, wb.data_root)
    own_data = source_kind != SOURCES[0]
    spec, config = _spec_and_embedder(classes, per_class, seed, source, embedder, own_data and subfolders)
    progress(0.0, desc="loading images")
    try:
        ready = yield from stream(lambda on_progress, should_stop: wb.prepare(spec, config, on_progress, should_stop),
                                  into_progress(progress))
    except gr.Error:
        if stored is not None:  # a refused upload leaves nothing behind (one stored before is kept)
            shutil.rmtree(stored, ignore_errors=True)
        raise
    except WeightsUnavailable as exc:
        raise error(f"{exc} Here in the studio: choose the 'pixels' embedder, or another model whose "
                    "weights are on this machine.") from exc
    session.replace_data(ready)
    session.notices = skipped_notices(ready.dataset.skipped)
    yield session, dataset_summary(session), notices_markdown(session)


def dataset_summary(session: Session) -> str:
    if session.ready is None:
        return "No dataset loaded yet."
    ds, features = session.dataset, session.features
    height, width, channels = ds.images.shape[1:]
    title = re.sub(r"^uploads/[0-9a-f]{12}/", "", ds.name)  # the user's file name, not where it is stored
    lines = [f"### {title}", ds.description, "",
             f"- **{len(ds):,} images**, {width}×{height} px, {'colour' if channels == 3 else 'greyscale'}",
             f"- **embedder:** {session.embedder} → {features.shape[1]}-dimensional features "
             f"({'from cache' if session.ready.cache_hit else 'computed now, cached for next time'})"]
    if ds.labels is not None:
        classes, counts = np.unique(ds.labels, return_counts=True)
        names = label_names(ds, [int(np.flatnonzero(ds.labels == c)[0]) for c in classes])
        lines.append("- **classes:** " + ", ".join(f"{name} ({count:,})" for name, count in zip(names, counts)))
    else:
        lines.append("- no labels")
    return "\n".join(lines)


def start_fields(session: Session):
    """After page load: (summary, embedder shown) of the dataset the visitor starts with."""
    return dataset_summary(session), (session.embedder or gr.skip())


def dataset_preview(session: Session, *, wb: Workbench, count: int = 24) -> list[tuple[str, str]]:
    """A fixed random handful of images, so people see what they loaded."""
    if session.ready is None:
        return []
    n = len(session.dataset)
    indices = np.sort(np.random.default_rng(0).choice(n, size=min(count, n), replace=False))
    return gallery(session, indices, wb, None)


def skipped_notices(skipped, shown: int = 3) -> list[str]:
    """[(file, reason)] -> one sentence naming the first few files the loader passed over."""
    if not skipped:
        return []
    named = "; ".join(f"`{name}` ({reason})" for name, reason in skipped[:shown])
    more = f"; {len(skipped) - shown} more" if len(skipped) > shown else ""
    return [f"Skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''} that could not be read: {named}{more}."]


def notices_markdown(session: Session) -> str:
    notes = list(session.notices)
    if session.embedder == "pixels":
        notes.insert(0, "**Using raw pixels as features.** The paper uses CLIP ViT-L/14 embeddings, which "
                        "capture what images *look like* to people; pixel distances are a rough stand-in. "
                        "Pick a CLIP embedder if its weights are on this machine.")
    return "\n\n".join(f"⚠️ {note}" for note in notes)


def initial_session(wb: Workbench, choice: StartupChoice | None, on_progress=None) -> Session:
    """The session every visitor starts from: dataset loaded, embedded and weighted (two workbench
    calls; no figures are built). Falls back to pixels when the chosen CLIP weights are missing."""
    session = Session()
    if choice is None:
        return session
    spec = DatasetSpec(choice.source, choice.classes, choice.per_class, choice.seed)
    try:
        ready = wb.prepare(spec, EmbedConfig.parse(choice.embedder), on_progress)
    except WeightsUnavailable:
        choice.embedder = "pixels"
        ready = wb.prepare(spec, EmbedConfig.parse("pixels"), on_progress)
    session.replace_data(ready)
    session.notices = skipped_notices(ready.dataset.skipped)
    defaults = WeightsConfig()
    config = WeightsConfig(steps=choice.steps or defaults.steps)
    result = wb.weights(ready.features, config, on_progress)
    key = weights_key(config.gamma, config.steps, config.lr)
    session.weights[key], session.current_key = result, key
    return session


# ----------------------------------------------------------------------------- inspect


def top_bottom(session: Session, k, batch_size, *, wb: Workbench):
    """-> (top gallery, bottom gallery, histogram, class-mass figure, stats markdown)."""
    result = require_weights(session)
    try:
        view = wb.inspect(session.dataset, result.p, int(k or 12), int(batch_size or 64))
    except (TypeError, ValueError) as exc:
        raise user_error(exc) from None
    if view.class_mass is not None:
        mass_fig = figures.class_mass_figure(view.class_names, view.class_mass.uniform, view.class_mass.weighted)
    else:
        mass_fig = figures.empty_figure("No labels: mass per class is not available.")
    return (gallery(session, view.top, wb, view.relative), gallery(session, view.bottom, wb, view.relative),
            figures.histogram_figure(*view.histogram, view.bin_members), mass_fig,
            stats_markdown(view.summary) + health_note(wb, result.p, int(batch_size or 64)))


def top_bottom_if_weighted(session: Session, k, batch_size, *, wb: Workbench):
    """top_bottom for page load: empty views instead of an error when nothing is weighted yet."""
    if session.current is None:
        blank = figures.empty_figure("Compute weights to see this.")
        return [], [], blank, blank, "No weights yet."
    return top_bottom(session, k, batch_size, wb=wb)


STALE = "*Out of date: new weights are being computed; this fills in again when they are ready.*"


def stale_panels():
    """While new data or weights are computed, the panels that show the old ones say so (and are
    emptied): (top, bottom, histogram, class mass, stats, map note, export files, snippet)."""
    blank = figures.empty_figure("Out of date: new weights are being computed…")
    return [], [], blank, blank, STALE, STALE, None, ""


def stats_markdown(s: dict) -> str:
    return (f"- **Effective sample size:** {s['ess']:,.0f} of {s['n']:,} ({s['ess_fraction']:.0%}) — "
            "the weighted data is worth about this many equally-used examples.\n"
            f"- **Largest / smallest weight:** {s['max_min_ratio']:,.1f}× "
            f"(most-favoured example {s['max_relative']:.2f}× uniform, least-favoured {s['min_relative']:.2f}×)\n"
            f"- **Repeats in a batch of {s['batch_size']}:** {s['expected_repeats']:.2f} draws on average repeat "
            f"an example already in the batch (uniform sampling: {s['expected_repeats_uniform']:.2f})")


# ----------------------------------------------------------------------------- export


def export(session: Session, batch_size, *, wb: Workbench):
    """-> ([csv, npy, json] paths under <data_root>/generated/exports/, sampler snippet)."""
    result = require_weights(session)
    try:
        files = wb.export(session.dataset, session.embedder, result, int(batch_size or 64),  # the CSV also says
                          features=session.features, explained=current_explanation(session, wb))  # why each weight
    except (ValueError, OSError) as exc:  # OSError: a full or read-only disk
        raise user_error(exc) from exc
    if files.note:
        gr.Info(files.note)
    snippet = "".join(f"# {line}\n" for line in textwrap.wrap(files.note, 96)) + files.snippet
    return [str(files.csv), str(files.npy), str(files.json)], snippet


def export_streamed(session: Session, batch_size, *, wb: Workbench):
    """The Export button: `export`, with a note on the page while new weights' why-columns are prepared."""
    require_weights(session)
    yield from with_explanation(session, wb, (gr.skip(), "# Preparing the why-columns of these weights (once per "
                                                         "weights; large sets take a few seconds)…"))
    yield export(session, batch_size, wb=wb)
