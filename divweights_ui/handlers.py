"""Event handlers of the studio: UI values -> one core call -> what the UI shows.

Every handler takes the per-session `Session` first and returns plain values (markdown strings,
plotly figures, gallery lists). Bad input raises `gr.Error` with a plain sentence *before*
the session is touched, so the user keeps what they had. The data root is bound by
`layout.build_demo` with functools.partial. This module holds the Dataset, Inspect and Export
handlers and re-exports the Weights (`weights_handlers`) and Map (`map_handlers`) ones, so the
layout and tests see one namespace.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import numpy as np

from core.diversity import inspect as weights_inspect
from core.diversity.export import ExportMeta, config_dict, export_weights, sampler_snippet
from core.data.storage import file_digest
from divweights_ui import figures
from divweights_ui.common import (  # noqa: F401 (constants the layout reads through this module)
    DEFAULT_MAP_POINTS, DEFAULT_SWEEP, EMBEDDERS, MAX_UPLOAD_MB, PAPER_EMBEDDER, SOURCES, StartupChoice, _cache,
    _gallery, _require_weights, _user_error, embed_config, generated_dir, label_names, map_cache_dir, parse_classes)
from divweights_ui.map_handlers import draw_map, map_sample, recolour_map, select_points  # noqa: F401
from divweights_ui.session import DatasetSpec, Session
from divweights_ui.weights_handlers import compute_weights, show_weights, sweep  # noqa: F401

# ----------------------------------------------------------------------------- dataset


def default_choice(data_root: Path) -> StartupChoice:
    """Fashion-MNIST T-shirt/Trouser pair (1,000 each) if its files are here, else digits;
    CLIP ViT-L/14 if its weights are cached, else pixels."""
    from core.data.datasets import list_builtins
    from core.data.embed import WeightsUnavailable, resolve_weights

    available = {row["name"] for row in list_builtins(data_root) if row["available"]}
    choice = (StartupChoice("fashion-mnist", (0, 1), 1000) if "fashion-mnist" in available
              else StartupChoice("digits"))
    try:
        model, pretrained = PAPER_EMBEDDER.split("/")
        checkpoint, _ = resolve_weights(model, pretrained)
        if checkpoint and Path(checkpoint).is_file():  # cached locally: no download at start
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
        raise gr.Error(f"That file is larger than {MAX_UPLOAD_MB} MB.", print_exception=False)
    folder = Path(data_root) / "uploads" / file_digest(source)
    target = folder / source.name
    created = None if folder.exists() else folder
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return str(target.relative_to(data_root)), created


def _resolve_source(source_kind: str, builtin: str, upload, folder: str, data_root: Path) -> tuple[str, Path | None]:
    """-> (dataset source, the upload folder this call created, to remove if the data is refused)."""
    if source_kind == SOURCES[0]:
        return builtin, None
    if source_kind == SOURCES[1]:
        if not upload:
            raise gr.Error("Choose a .zip, .npy or .npz file to upload first.", print_exception=False)
        return _store_upload(upload if isinstance(upload, str) else upload.name, data_root)
    if not (folder or "").strip():
        raise gr.Error("Type a folder path relative to the data root, e.g. my_images.", print_exception=False)
    return folder.strip(), None


def prepare(spec: DatasetSpec, embedder: str, data_root: Path, on_progress=None):
    """Load + embed: -> (dataset, features, cache_hit). Raises core's ValueError/FileNotFoundError/
    WeightsUnavailable."""
    from core.data.datasets import load_dataset as core_load
    from core.data.embed import embed_cached

    dataset = core_load(spec.source, data_root, classes=spec.classes, per_class=spec.per_class, seed=spec.seed)
    features, hit = embed_cached(dataset, embed_config(embedder), cache_dir=_cache(data_root, "embeddings"),
                                 on_progress=on_progress)
    return dataset, features, hit


def load_dataset(session: Session, source_kind: str, builtin: str, classes: str, per_class, seed,
                 upload, folder: str, embedder: str, *, data_root: Path, progress=gr.Progress()):
    """Dataset tab -> (session, summary markdown, notice markdown)."""
    from core.data.embed import WeightsUnavailable

    chosen = dict(classes=parse_classes(classes), per_class=int(per_class) if per_class else None, seed=int(seed or 0))
    source, stored = _resolve_source(source_kind, builtin, upload, folder, data_root)
    spec = DatasetSpec(source=source, **chosen)
    progress(0.0, desc="loading images")

    def on_progress(done: int, total: int) -> None:
        progress(done / max(total, 1), desc=f"embedding {done:,}/{total:,} images")

    try:
        dataset, features, hit = prepare(spec, embedder, data_root, on_progress)
    except WeightsUnavailable as exc:
        raise gr.Error(f"{exc} Here in the studio: choose the 'pixels' embedder, or another model whose "
                       "weights are on this machine.", print_exception=False) from exc
    except (ValueError, FileNotFoundError, NotADirectoryError) as exc:
        if stored is not None:  # a refused upload leaves nothing behind (one stored before is kept)
            shutil.rmtree(stored, ignore_errors=True)
        raise _user_error(exc) from exc
    session.replace_data(spec, dataset, features, embedder, hit)
    session.notices = skipped_notices(dataset.skipped)
    return session, dataset_summary(session), notices_markdown(session)


def dataset_summary(session: Session) -> str:
    if session.dataset is None:
        return "No dataset loaded yet."
    ds, features = session.dataset, session.features
    height, width, channels = ds.images.shape[1:]
    lines = [f"### {ds.name}", ds.description, "",
             f"- **{len(ds):,} images**, {width}×{height} px, {'colour' if channels == 3 else 'greyscale'}",
             f"- **embedder:** {session.embedder} → {features.shape[1]}-dimensional features "
             f"({'from cache' if session.embed_cache_hit else 'computed now, cached for next time'})"]
    if ds.labels is not None:
        classes, counts = np.unique(ds.labels, return_counts=True)
        names = label_names(ds, [int(np.flatnonzero(ds.labels == c)[0]) for c in classes])
        lines.append("- **classes:** " + ", ".join(f"{name} ({count:,})" for name, count in zip(names, counts)))
    else:
        lines.append("- no labels")
    return "\n".join(lines)


def dataset_preview(session: Session, *, data_root: Path, count: int = 24) -> list[tuple[str, str]]:
    """A fixed random handful of images, so people see what they loaded."""
    if session.dataset is None:
        return []
    n = len(session.dataset)
    indices = np.sort(np.random.default_rng(0).choice(n, size=min(count, n), replace=False))
    return _gallery(session, indices, data_root, None)


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


def initial_session(data_root: Path, choice: StartupChoice | None) -> Session:
    """The session every visitor starts from: dataset loaded, embedded and weighted."""
    from core.data.embed import WeightsUnavailable
    from core.diversity.weights import WeightsConfig

    session = Session()
    if choice is None:
        return session
    spec = DatasetSpec(choice.source, choice.classes, choice.per_class, choice.seed)
    try:
        dataset, features, hit = prepare(spec, choice.embedder, data_root)
    except WeightsUnavailable:
        choice.embedder = "pixels"
        dataset, features, hit = prepare(spec, "pixels", data_root)
    session.replace_data(spec, dataset, features, choice.embedder, hit)
    config = WeightsConfig()
    steps = choice.steps or config.steps
    for _ in compute_weights(session, config.gamma, steps, config.lr, data_root=data_root):
        pass
    return session


# ----------------------------------------------------------------------------- inspect


def top_bottom(session: Session, k, batch_size, *, data_root: Path):
    """-> (top gallery, bottom gallery, histogram, class-mass figure, stats markdown)."""
    result = _require_weights(session)
    k, batch_size = int(k or 12), int(batch_size or 64)
    if k < 1 or batch_size < 1:
        raise gr.Error("Number of examples and batch size must be at least 1.", print_exception=False)
    p = result.p
    top, bottom = weights_inspect.top_bottom_indices(p, k)
    counts, edges = weights_inspect.weight_histogram(p, log2=True)
    labels = session.dataset.labels
    if labels is not None:
        mass = weights_inspect.class_mass(p, labels)
        names = label_names(session.dataset, [int(np.flatnonzero(labels == c)[0]) for c in mass.classes])
        mass_fig = figures.class_mass_figure(names, mass.uniform, mass.weighted)
    else:
        mass_fig = figures.empty_figure("No labels: mass per class is not available.")
    return (_gallery(session, top, data_root, p), _gallery(session, bottom, data_root, p),
            figures.histogram_figure(counts, edges), mass_fig, stats_markdown(p, batch_size))


def top_bottom_if_weighted(session: Session, k, batch_size, *, data_root: Path):
    """top_bottom for page load: empty views instead of an error when nothing is weighted yet."""
    if session.current is None:
        blank = figures.empty_figure("Compute weights to see this.")
        return [], [], blank, blank, "No weights yet."
    return top_bottom(session, k, batch_size, data_root=data_root)


def stats_markdown(p: np.ndarray, batch_size: int) -> str:
    s = weights_inspect.weight_summary(p, batch_size)
    return (f"- **Effective sample size:** {s['ess']:,.0f} of {s['n']:,} ({s['ess_fraction']:.0%}) — "
            "the weighted data is worth about this many equally-used examples.\n"
            f"- **Largest / smallest weight:** {s['max_min_ratio']:,.1f}× "
            f"(most-favoured example {s['max_relative']:.2f}× uniform, least-favoured {s['min_relative']:.2f}×)\n"
            f"- **Repeats in a batch of {s['batch_size']}:** {s['expected_repeats']:.2f} draws on average repeat "
            f"an example already in the batch (uniform sampling: {s['expected_repeats_uniform']:.2f})")


# ----------------------------------------------------------------------------- export


def export(session: Session, batch_size, *, data_root: Path):
    """-> ([csv, npy, json] paths under <data_root>/generated/exports/, sampler snippet)."""
    result = _require_weights(session)
    dataset = session.dataset
    meta = ExportMeta(dataset_name=dataset.name, dataset_fingerprint=dataset.fingerprint,
                      embedder=session.embedder, config=config_dict(result.config),
                      vs_uniform=float(result.vs_uniform), vs_weighted=float(result.vs_final))
    folder = generated_dir(data_root) / "exports" / f"{dataset.fingerprint}-{session.current_key}"
    try:
        paths = export_weights(result.p, dataset.ids, dataset.labels, meta, folder)
    except ValueError as exc:
        raise _user_error(exc) from exc
    files = [str(paths[kind]) for kind in ("csv", "npy", "json")]
    return files, sampler_snippet(paths["npy"].name, int(batch_size or 64))
