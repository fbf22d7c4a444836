"""Shared pieces of the studio's handlers: constants, input parsing, errors, thumbnails.

Handlers raise `gr.Error` with a plain sentence *before* touching the session, so bad input
never costs the user what they had. Only `<data_root>/generated/` is ever handed to gradio.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np

from core.diversity.export import thumbnail_image, write_thumbnails
from divweights_ui.session import Session

GENERATED_DIR = "generated"  # the only folder under the data root that gradio may serve
MAX_UPLOAD_MB = 200  # uploads above this are refused by gradio before they reach a handler
SOURCES = ("Built-in", "Upload (.zip / .npy / .npz)", "Folder under the data root")
PAPER_EMBEDDER = "ViT-L-14/openai"
EMBEDDERS = (PAPER_EMBEDDER, "ViT-B-32/openai", "pixels", "precomputed")
DEFAULT_SWEEP = "0, 0.2, 0.4, 0.6, 0.8, 1"
MAX_SELECTION = 120  # images shown for one map selection
DEFAULT_MAP_POINTS = 3000  # dots drawn on the map by default (a fixed sample beyond this)
# Live chart refresh period while weights are optimised. Each refresh is a full plotly redraw in the
# browser, which shares the CPU with the optimiser on a laptop: 100 steps at n = 2,000 took 18.9 s
# from the browser at 0.25 s, 14.7 s at 0.5 s and 12.6 s at 1 s (9 s through the API, no chart).
STREAM_EVERY_S = 1.0


def image_array(path: Path) -> np.ndarray:
    """An image file under the data root as an RGB array. Galleries get pixels, never paths: gradio
    refuses to serve anything under runs/, cache/ or uploads/ (only generated/ is allowed)."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@dataclass
class StartupChoice:
    """What the studio loads before the first visitor arrives."""

    source: str = "digits"  # built-in name
    classes: tuple[int, ...] | None = None  # class pair, e.g. (0, 1)
    per_class: int | None = None  # examples per class of the pair
    seed: int = 0
    embedder: str = "pixels"  # "pixels" or "model/pretrained"
    steps: int | None = None  # weights steps (None: WeightsConfig's default)


def generated_dir(data_root: Path) -> Path:
    return Path(data_root) / GENERATED_DIR


def _cache(data_root: Path, kind: str) -> Path:
    return Path(data_root) / "cache" / kind


def map_cache_dir(data_root: Path) -> Path:
    return _cache(data_root, "umap")


def _user_error(exc: BaseException) -> gr.Error:
    """A core exception as a one-sentence gr.Error (the session is left as it was)."""
    message = str(exc).strip() or exc.__class__.__name__
    if not any(mark in message.split(" ", 1)[0] for mark in "./\\'\""):  # a file name keeps its spelling
        message = message[0].upper() + message[1:]
    return gr.Error(message, print_exception=False)


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
    """'pixels' | 'precomputed' | 'model/pretrained' -> core.data.embed.EmbedConfig."""
    from core.data.embed import EmbedConfig

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
