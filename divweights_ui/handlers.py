"""Event handlers of the studio: UI values -> one core call -> what the UI shows.

Every handler takes the per-session `Session` first and returns plain values (markdown strings,
plotly figures, gallery lists). Bad input raises `gr.Error` with a plain sentence *before*
the session is touched, so the user keeps what they had. The data root is bound by
`layout.build_demo` with functools.partial; only `<data_root>/generated/` is ever handed to
gradio for serving.
"""

from __future__ import annotations

import base64
import hashlib
import io
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from core import inspect as weights_inspect
from core import projection
from core.export import ExportMeta, config_dict, export_weights, sampler_snippet, thumbnail_image, write_thumbnails
from divweights_ui import figures
from divweights_ui.session import DatasetSpec, Session

GENERATED_DIR = "generated"  # the only folder under the data root that gradio may serve
MAX_UPLOAD_MB = 200  # uploads above this are refused by gradio before they reach a handler
SOURCES = ("Built-in", "Upload (.zip / .npy / .npz)", "Folder under the data root")
PAPER_EMBEDDER = "ViT-L-14/openai"
EMBEDDERS = (PAPER_EMBEDDER, "ViT-B-32/openai", "pixels", "precomputed")
DEFAULT_SWEEP = "0, 0.2, 0.4, 0.6, 0.8, 1"
MAX_SELECTION = 120  # images shown for one map selection
DEFAULT_MAP_POINTS = 3000  # dots drawn on the map by default (a fixed sample beyond this)
STREAM_EVERY_S = 0.25  # live chart refresh period while weights are optimised


@dataclass
class StartupChoice:
    """What the studio loads before the first visitor arrives."""

    source: str = "digits"  # built-in name
    classes: tuple[int, ...] | None = None  # class pair, e.g. (0, 1)
    per_class: int | None = None  # examples per class of the pair
    seed: int = 0
    embedder: str = "pixels"  # "pixels" or "model/pretrained"
    steps: int | None = None  # weights steps (None: WeightsConfig's default)


# ----------------------------------------------------------------------------- small helpers


def generated_dir(data_root: Path) -> Path:
    return Path(data_root) / GENERATED_DIR


def _cache(data_root: Path, kind: str) -> Path:
    return Path(data_root) / "cache" / kind


def map_cache_dir(data_root: Path) -> Path:
    return _cache(data_root, "umap")


def _user_error(exc: BaseException) -> gr.Error:
    """A core exception as a one-sentence gr.Error (the session is left as it was)."""
    message = str(exc).strip() or exc.__class__.__name__
    return gr.Error(message[0].upper() + message[1:], print_exception=False)


def _require_features(session: Session) -> np.ndarray:
    if session.features is None or session.dataset is None:
        raise gr.Error("Load a dataset first (Dataset tab).", print_exception=False)
    return session.features


def _require_weights(session: Session):
    _require_features(session)
    if session.current is None:
        raise gr.Error("Compute weights first (Weights tab).", print_exception=False)
    return session.current


def parse_classes(text: str | None) -> tuple[int, ...] | None:
    """'0, 1' -> (0, 1); blank -> None (all classes)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError:
        raise gr.Error(f"Classes should be numbers separated by commas, like 0, 1 (got {text!r}).",
                       print_exception=False) from None


def parse_indices(text: str | None, n: int) -> np.ndarray:
    """'3, 17, 200-220' -> sorted unique indices, all inside 0..n-1."""
    chosen: list[int] = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                start, end = (int(x) for x in part.split("-", 1))
                chosen.extend(range(start, end + 1))
            else:
                chosen.append(int(part))
        except ValueError:
            raise gr.Error(f"{part!r} is not an index or a range like 200-220.", print_exception=False) from None
    indices = np.unique(np.asarray(chosen, dtype=np.int64))
    if indices.size and (indices[0] < 0 or indices[-1] >= n):
        raise gr.Error(f"Indices must be between 0 and {n - 1}.", print_exception=False)
    return indices


def parse_gammas(text: str | None) -> list[float]:
    try:
        gammas = [float(part) for part in (text or "").replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise gr.Error("γ values should be numbers between 0 and 1 separated by commas.", print_exception=False) from None
    if not gammas or any(not 0.0 <= g <= 1.0 for g in gammas):
        raise gr.Error("Give one or more γ values between 0 and 1, e.g. 0, 0.5, 1.", print_exception=False)
    return sorted(set(gammas))


def embed_config(embedder: str):
    """'pixels' | 'precomputed' | 'model/pretrained' -> core.embed.EmbedConfig."""
    from core.embed import EmbedConfig

    embedder = (embedder or "").strip()
    if embedder in ("pixels", "precomputed"):
        return EmbedConfig(model=embedder, pretrained="")
    model, _, pretrained = embedder.partition("/")
    if not model:
        raise gr.Error("Choose an embedder, e.g. pixels or ViT-L-14/openai.", print_exception=False)
    return EmbedConfig(model=model, pretrained=pretrained or "openai")


def weights_key(gamma: float, steps: int, lr: float) -> str:
    return f"g{gamma:.4f}-s{int(steps)}-lr{lr:g}"


def label_names(dataset, indices) -> list[str]:
    if dataset.labels is None:
        return ["unlabelled"] * len(indices)
    names = dataset.class_names
    return [names[int(dataset.labels[i])] if names else str(int(dataset.labels[i])) for i in indices]


def _thumb_b64(session: Session, index: int) -> str:
    cached = session.thumbs_b64.get(index)
    if cached is None:
        buffer = io.BytesIO()
        image = session.dataset.images[index]
        size = min(48, max(image.shape[:2]))  # never upscale here: the page scales it up, pixelated
        thumbnail_image(image, size=size).save(buffer, format="PNG")
        cached = base64.b64encode(buffer.getvalue()).decode("ascii")
        session.thumbs_b64[index] = cached
    return cached


def _gallery(session: Session, indices, data_root: Path, p: np.ndarray | None) -> list[tuple[str, str]]:
    """(path, caption) pairs: thumbnails written under <data_root>/generated/thumbs/."""
    folder = generated_dir(data_root) / "thumbs" / session.dataset.fingerprint
    paths = write_thumbnails(session.dataset.images, indices, folder, size=112)
    names = label_names(session.dataset, indices)
    n = len(session.dataset)
    # weight before the class name: gallery captions are cut at the thumbnail's width
    captions = [f"#{i} · " + (f"{p[i] * n:.2f}× · " if p is not None else "") + name
                for i, name in zip(indices, names)]
    return [(str(path), caption) for path, caption in zip(paths, captions)]


# ----------------------------------------------------------------------------- dataset


def default_choice(data_root: Path) -> StartupChoice:
    """Fashion-MNIST T-shirt/Trouser pair (1,000 each) if its files are here, else digits;
    CLIP ViT-L/14 if its weights are cached, else pixels."""
    from core.datasets import list_builtins
    from core.embed import WeightsUnavailable, resolve_weights

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


def _store_upload(upload: str, data_root: Path) -> str:
    """Copy a gradio upload into <data_root>/uploads/ (content-addressed, never overwriting)."""
    source = Path(upload)
    if source.stat().st_size > MAX_UPLOAD_MB * 1024 * 1024:
        raise gr.Error(f"That file is larger than {MAX_UPLOAD_MB} MB.", print_exception=False)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    target = Path(data_root) / "uploads" / f"{digest}-{source.name}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return str(target.relative_to(data_root))


def _resolve_source(source_kind: str, builtin: str, upload, folder: str, data_root: Path) -> str:
    if source_kind == SOURCES[0]:
        return builtin
    if source_kind == SOURCES[1]:
        if not upload:
            raise gr.Error("Choose a .zip, .npy or .npz file to upload first.", print_exception=False)
        return _store_upload(upload if isinstance(upload, str) else upload.name, data_root)
    if not (folder or "").strip():
        raise gr.Error("Type a folder path relative to the data root, e.g. my_images.", print_exception=False)
    return folder.strip()


def prepare(spec: DatasetSpec, embedder: str, data_root: Path, on_progress=None):
    """Load + embed: -> (dataset, features, cache_hit). Raises core's ValueError/FileNotFoundError/
    WeightsUnavailable."""
    from core.datasets import load_dataset as core_load
    from core.embed import embed_cached

    dataset = core_load(spec.source, data_root, classes=spec.classes, per_class=spec.per_class, seed=spec.seed)
    features, hit = embed_cached(dataset, embed_config(embedder), cache_dir=_cache(data_root, "embeddings"),
                                 on_progress=on_progress)
    return dataset, features, hit


def load_dataset(session: Session, source_kind: str, builtin: str, classes: str, per_class, seed,
                 upload, folder: str, embedder: str, *, data_root: Path, progress=gr.Progress()):
    """Dataset tab -> (session, summary markdown, notice markdown)."""
    from core.embed import WeightsUnavailable

    spec = DatasetSpec(source=_resolve_source(source_kind, builtin, upload, folder, data_root),
                       classes=parse_classes(classes), per_class=int(per_class) if per_class else None,
                       seed=int(seed or 0))
    progress(0.0, desc="loading images")

    def on_progress(done: int, total: int) -> None:
        progress(done / max(total, 1), desc=f"embedding {done:,}/{total:,} images")

    try:
        dataset, features, hit = prepare(spec, embedder, data_root, on_progress)
    except WeightsUnavailable as exc:
        raise gr.Error(f"{exc} Here in the studio: choose the 'pixels' embedder, or another model whose "
                       "weights are on this machine.", print_exception=False) from exc
    except (ValueError, FileNotFoundError, NotADirectoryError) as exc:
        raise _user_error(exc) from exc
    session.replace_data(spec, dataset, features, embedder, hit)
    session.notices = [f"Skipped {len(dataset.skipped)} files that could not be read."] if dataset.skipped else []
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


def notices_markdown(session: Session) -> str:
    notes = list(session.notices)
    if session.embedder == "pixels":
        notes.insert(0, "**Using raw pixels as features.** The paper uses CLIP ViT-L/14 embeddings, which "
                        "capture what images *look like* to people; pixel distances are a rough stand-in. "
                        "Pick a CLIP embedder if its weights are on this machine.")
    return "\n\n".join(f"⚠️ {note}" for note in notes)


def initial_session(data_root: Path, choice: StartupChoice | None) -> Session:
    """The session every visitor starts from: dataset loaded, embedded and weighted."""
    from core.embed import WeightsUnavailable
    from core.weights import WeightsConfig

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


# ----------------------------------------------------------------------------- weights


def _weights_config(gamma, steps, lr):
    from core.weights import WeightsConfig

    try:
        config = WeightsConfig(gamma=float(gamma), steps=int(steps), lr=float(lr))
    except (TypeError, ValueError):
        raise gr.Error("γ, steps and learning rate must be numbers.", print_exception=False) from None
    if not 0 <= config.gamma <= 1 or config.steps < 1 or config.lr <= 0:
        raise gr.Error("γ must be between 0 and 1, steps at least 1, and the learning rate above 0.",
                       print_exception=False)
    return config


def weights_numbers(result, running: bool = False) -> str:
    """'uniform VS → weighted VS' line plus entropy and ESS, for people."""
    last = result.history[-1] if result.history else {}
    n = len(result.p)
    vs_weighted = last.get("vs", result.vs_final) if running else result.vs_final
    change = (vs_weighted / result.vs_uniform - 1) * 100 if result.vs_uniform else 0.0
    ess = last.get("ess", weights_inspect.effective_sample_size(result.p))
    status = "optimising…" if running else ("stopped early" if result.stopped else "done")
    return (f"<div id='vs-line'>Vendi Score: uniform <b id='vs-uniform'>{result.vs_uniform:.3f}</b> → "
            f"weighted <b id='vs-weighted'>{vs_weighted:.3f}</b> ({change:+.1f}%)</div>\n\n"
            f"γ = {result.config.gamma:.2f} · entropy {last.get('entropy', float('nan')):.3f} nats "
            f"(uniform {np.log(n):.3f}) · ESS {ess:,.0f} of {n:,} · {status}")


@dataclass
class _Running:
    """Stand-in result while optimising, so weights_numbers can show partial values."""

    p: np.ndarray
    history: list
    config: object
    vs_uniform: float
    vs_final: float = float("nan")
    stopped: bool = False
    last_yield: float = 0.0  # time.monotonic() of the last streamed update


def _streamed(run):
    """Run `run(on_step, should_stop)` on a worker thread; yield each on_step row; return its result.

    When the consumer stops early (Stop button, closed browser: gradio closes the generator),
    should_stop() turns True and the worker ends cleanly before this generator finishes.
    """
    updates: queue.Queue = queue.Queue()
    stop = threading.Event()
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["result"] = run(updates.put, stop.is_set)
        except Exception as exc:  # re-raised below, in the handler's thread
            outcome["error"] = exc
        finally:
            updates.put(None)

    worker = threading.Thread(target=work, name="weights", daemon=True)
    worker.start()
    try:
        while (row := updates.get()) is not None:
            yield row
    finally:
        stop.set()
        worker.join()
    if "error" in outcome:
        error = outcome["error"]
        raise _user_error(error) if isinstance(error, ValueError) else error
    return outcome["result"]


def compute_weights(session: Session, gamma, steps, lr, *, data_root: Path):
    """Generator: stream (session, live chart, numbers) while Algorithm 1 runs; cached γ return at once."""
    from core.vendi import vendi_score
    from core.weights import sweep_gamma

    features = _require_features(session)
    config = _weights_config(gamma, steps, lr)
    key = weights_key(config.gamma, config.steps, config.lr)
    if key in session.weights:
        session.current_key = key
        result = session.weights[key]
        yield session, figures.progress_figure(result.history, result.vs_uniform, config.steps), weights_numbers(result)
        return

    def run(on_step, should_stop):
        return sweep_gamma(features, [config.gamma], cache_dir=_cache(data_root, "weights"), steps=config.steps,
                           lr=config.lr, on_step=on_step, should_stop=should_stop)[config.gamma]

    running = _Running(np.full(len(features), 1.0 / len(features)), [], config, vendi_score(features))
    rows = _streamed(run)
    while True:
        try:
            running.history.append(next(rows))
        except StopIteration as done:
            result = done.value
            break
        if len(running.history) == 1 or _due(running):
            yield (session, figures.progress_figure(running.history, running.vs_uniform, config.steps),
                   weights_numbers(running, running=True))
    if not result.stopped:
        session.weights[key] = result
        session.current_key = key
    yield session, figures.progress_figure(result.history, result.vs_uniform, config.steps), weights_numbers(result)


def _due(running) -> bool:
    """True at most once per STREAM_EVERY_S for this run (the browser cannot redraw faster)."""
    now = time.monotonic()
    if now - running.last_yield > STREAM_EVERY_S:
        running.last_yield = now
        return True
    return False


def show_weights(session: Session):
    """(live chart, numbers) of the weights currently chosen, for page load."""
    result = session.current
    if result is None:
        return figures.empty_figure("Press “Compute weights” to start."), "No weights computed yet."
    return figures.progress_figure(result.history, result.vs_uniform, result.config.steps), weights_numbers(result)


def sweep(session: Session, gammas_text: str, steps, lr, chosen_gamma, *, data_root: Path):
    """Generator: γ sweep (one batched, disk-cached run) -> (session, trade-off figure, table markdown).

    Streams a progress line while it runs; Stop or closing the page ends it cleanly.
    """
    from core.weights import sweep_gamma

    features = _require_features(session)
    config = _weights_config(chosen_gamma, steps, lr)
    gammas = sorted(set(parse_gammas(gammas_text)) | {config.gamma})  # the slider's γ is always marked

    def run(on_step, should_stop):
        return sweep_gamma(features, gammas, cache_dir=_cache(data_root, "weights"), steps=config.steps,
                           lr=config.lr, on_step=on_step, should_stop=should_stop)

    rows = _streamed(run)
    running = _Running(None, [], config, float("nan"))
    while True:
        try:
            row = next(rows)
        except StopIteration as done:
            results = done.value
            break
        if _due(running):
            yield session, gr.skip(), f"Sweeping {len(gammas)} γ values together: step {row['step']} of {config.steps}…"
    if any(result.stopped for result in results.values()):
        yield session, gr.skip(), "Sweep stopped before the end; nothing was kept."
        return
    for gamma, result in results.items():
        session.weights[weights_key(gamma, config.steps, config.lr)] = result
    yield (session, sweep_figure(results, gammas, config.gamma), sweep_table(results, gammas))


def _entropy(p: np.ndarray) -> float:
    return float(-(p * np.log(np.maximum(p, 1e-300))).sum())


def sweep_figure(results: dict, gammas: list[float], chosen: float):
    ess = [weights_inspect.effective_sample_size(results[g].p) for g in gammas]
    entropy = [_entropy(results[g].p) for g in gammas]
    vs = [results[g].vs_final for g in gammas]
    return figures.sweep_figure(gammas, vs, ess, entropy, chosen if chosen in results else None)


def sweep_table(results: dict, gammas: list[float]) -> str:
    table = ["| γ | weighted VS | ESS | entropy |", "|---|---|---|---|"]
    for g in gammas:
        p = results[g].p
        table.append(f"| {g:.2f} | {results[g].vs_final:.3f} | {weights_inspect.effective_sample_size(p):,.0f} "
                     f"| {_entropy(p):.3f} |")
    table.append(f"\nUniform VS: {results[gammas[0]].vs_uniform:.3f}. Every γ here is now cached: "
                 "set it on the slider and press Compute to use it at once.")
    return "\n".join(table)


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


# ----------------------------------------------------------------------------- map


def _map_method(requested: str, features: np.ndarray, cache_dir: Path) -> tuple[str, str]:
    """'umap' | 'pca' | 'auto' -> (method to use now, note). auto = UMAP once it needs no compile wait."""
    if requested == "auto":
        if projection.is_warm() or projection.has_cached(features, projection.ProjectionConfig(), cache_dir):
            return "umap", ""
        return "pca", ("UMAP is still being prepared in the background (its first use compiles code, about a "
                       "minute). Showing a PCA map for now: press **Draw map** with UMAP in a moment.")
    if requested not in ("umap", "pca"):
        raise gr.Error("Map method must be UMAP or PCA.", print_exception=False)
    return requested, ""


def map_sample(n: int, max_points) -> np.ndarray:
    """The points drawn: all of them, or a fixed random sample that does not depend on the weights
    (so recolouring after new weights reuses the layout)."""
    max_points = int(max_points or DEFAULT_MAP_POINTS)
    if max_points < 2:
        raise gr.Error("Draw at least 2 dots.", print_exception=False)
    return projection.display_sample(n, max_points)


def draw_map(session: Session, method: str, size_by_weight: bool, max_points, *, data_root: Path):
    """-> (session, plotly map, note markdown). method: 'UMAP', 'PCA' or 'auto' (UMAP when ready).

    Large sets: only the drawn sample is laid out (UMAP of 70,000 points takes minutes on a CPU);
    the weights always cover every example. Layouts are cached on disk per sample and method.
    """
    features = _require_features(session)
    indices = map_sample(len(features), max_points)
    cache_dir = map_cache_dir(data_root)
    method, note = _map_method((method or "auto").lower(), features[indices], cache_dir)
    same_layout = (session.coords_method == method and session.map_indices is not None
                   and np.array_equal(session.map_indices, indices))
    if not same_layout:
        try:
            coords, _ = projection.project(features[indices], projection.ProjectionConfig(method=method), cache_dir)
        except ValueError as exc:
            raise _user_error(exc) from exc
        session.coords, session.coords_method, session.map_indices = coords, method, indices
    p = session.current_p()
    relative = None if p is None else p[indices] * len(p)
    thumbs = [_thumb_b64(session, int(i)) for i in indices]
    figure = figures.map_figure(session.coords, indices, relative, label_names(session.dataset, indices), thumbs,
                                method, len(features), bool(size_by_weight))
    if len(indices) < len(features):
        note += (f"\n\nShowing a fixed random sample of {len(indices):,} of {len(features):,} images "
                 "(raise *Dots drawn* for more); the weights always use all of them.")
    return session, figure, note.strip()


def recolour_map(session: Session, method: str, size_by_weight: bool, max_points, *, data_root: Path):
    """Redraw the map after new weights or data without waiting: UMAP only once it is ready."""
    if session.features is None:
        return session, figures.empty_figure("Load a dataset to see its map."), ""
    return draw_map(session, "pca" if (method or "").lower() == "pca" else "auto", size_by_weight, max_points,
                    data_root=data_root)


def select_points(session: Session, indices_text: str, *, data_root: Path):
    """Indices (from a lasso/box selection or typed) -> (gallery, summary markdown)."""
    _require_features(session)
    indices = parse_indices(indices_text, len(session.dataset))
    if indices.size == 0:
        return [], "Draw a box or lasso on the map (or type indices such as 3, 17, 200-220) to see images here."
    p = session.current_p()
    shown = indices[:MAX_SELECTION]
    text = f"**{indices.size:,} selected**"
    if p is not None:
        share = p[indices].sum()
        text += f" · they receive {share:.1%} of the draws (uniform: {indices.size / len(p):.1%})"
    if indices.size > shown.size:
        text += f" · showing the first {shown.size}"
    return _gallery(session, shown, data_root, p), text


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
