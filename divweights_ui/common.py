"""Shared pieces of the studio's handlers: constants, reading UI values, errors, thumbnails.

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

from divweights.data.dataset import label_names
from divweights.diversity.export import thumbnail_image, write_thumbnails
from divweights.workbench import Workbench
from divweights_ui.session import Session
from divweights_ui.streaming import user_error

MAX_UPLOAD_MB = 200  # uploads above this are refused by gradio before they reach a handler
SOURCES = ("Built-in", "Upload (.zip / .npy / .npz)", "Folder under the data root")
PAPER_EMBEDDER = "ViT-L-14/openai"
EMBEDDERS = (PAPER_EMBEDDER, "ViT-B-32/openai", "pixels", "precomputed")
DEFAULT_SWEEP = "0, 0.2, 0.4, 0.6, 0.8, 1"
MAX_SELECTION = 120  # images shown for one map selection
DEFAULT_MAP_POINTS = 3000  # dots drawn on the map by default (a fixed sample beyond this)
MAX_MAP_POINTS = 60_000  # the Dots drawn slider's end: all of Fashion-MNIST (WebGL draws it)
HOVER_THUMBS_MAX = 5000  # maps with more dots carry no hover pictures (~0.7 KB of page data each)
# each built-in's sensible start: a class pair of 1,000 each (all of Fashion-MNIST would be 60,000), or all of digits
BUILTIN_SUBSETS = {"fashion-mnist": ((0, 1), 1000), "mnist": ((0, 1), 1000), "digits": (None, None)}


def builtin_subset_fields(name: str) -> tuple[str, int | None]:
    """(classes text, images per class) a built-in starts with in the Dataset tab."""
    classes, per_class = BUILTIN_SUBSETS.get(name, (None, None))
    return (", ".join(map(str, classes)) if classes else ""), per_class


def error(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


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


def require_features(session: Session) -> np.ndarray:
    if session.ready is None:
        raise error("Load a dataset first (Dataset tab).")
    return session.features


def require_weights(session: Session):
    require_features(session)
    if session.current is None:
        raise error("Compute weights first (Weights tab).")
    return session.current


def parse_classes(text: str | None) -> tuple[int, ...] | None:
    """'0, 1' -> (0, 1); blank -> None (all classes)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return tuple(int(part) for part in text.replace(";", ",").split(",") if part.strip())
    except ValueError:
        raise error(f"Classes should be numbers separated by commas, like 0, 1 (got {text!r}).") from None


def parse_per_class(value) -> int | None:
    """The Dataset tab's "Images per class": blank, "all" or 0 -> None (every image); else a whole number ≥ 1."""
    text = "" if value is None else str(value).strip()
    if text.lower() in ("", "all", "0"):
        return None
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not number.is_integer() or number < 1:
        raise error(f"Images per class should be a whole number like 1000, or blank for all (got {text!r}).")
    return int(number)


def per_class_text(per_class: int | None) -> str:
    """How the Dataset tab shows images per class: blank for all (gradio's number field showed 0)."""
    return "" if per_class is None else str(per_class)


def parse_indices(text: str | None, n: int) -> np.ndarray:
    """'3, 17, 200-220' -> sorted unique indices, all inside 0..n-1."""
    ranges: list[tuple[int, int]] = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            start, end = (int(x) for x in part.split("-", 1)) if "-" in part[1:] else (int(part), int(part))
        except ValueError:
            raise error(f"{part!r} is not an index or a range like 200-220.") from None
        if not 0 <= start <= end < n:  # checked before anything is allocated
            raise error(f"Indices must be between 0 and {n - 1} (got {part}).")
        ranges.append((start, end))
    if len(ranges) > n:
        raise error(f"A selection has at most {n:,} parts.")
    chosen = [np.arange(start, end + 1) for start, end in ranges]
    return np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def parse_gammas(text: str | None) -> list[float]:
    try:
        gammas = [float(part) for part in (text or "").replace(";", ",").split(",") if part.strip()]
    except ValueError:
        raise error("γ values should be numbers between 0 and 1 separated by commas.") from None
    if not gammas or any(not 0.0 <= g <= 1.0 for g in gammas):
        raise error("Give one or more γ values between 0 and 1, e.g. 0, 0.5, 1.")
    return sorted(set(gammas))


def weights_key(gamma: float, steps: int, lr: float) -> str:
    return f"g{gamma:.4f}-s{int(steps)}-lr{lr:g}"


def thumb_b64(session: Session, index: int) -> str:
    cached = session.thumbs_b64.get(index)
    if cached is None:
        buffer = io.BytesIO()
        image = session.dataset.images[index]
        size = min(48, max(image.shape[:2]))  # never upscale here: the page scales it up, pixelated
        thumbnail_image(image, size=size).save(buffer, format="PNG")
        cached = base64.b64encode(buffer.getvalue()).decode("ascii")
        session.thumbs_b64[index] = cached
    return cached


def times_uniform(relative: float) -> str:
    """A weight as a multiple of the uniform share: 2 decimals, or 2 significant digits below 0.1
    ("0.0076×", where 2 decimals would say "0.00×")."""
    return f"{relative:.2f}×" if relative >= 0.1 else f"{relative:.2g}×"


def gallery(session: Session, indices, wb: Workbench, relative: np.ndarray | None) -> list[tuple[str, str]]:
    """(path, caption) pairs: thumbnails written under <data_root>/generated/thumbs/.
    relative: (n,) weights as multiples of the uniform share, or None."""
    folder = wb.generated_dir() / "thumbs" / session.dataset.fingerprint
    try:
        paths = write_thumbnails(session.dataset.images, indices, folder, size=112)
    except OSError as exc:  # a full disk: one sentence, the session as it was
        raise user_error(exc) from exc
    names = label_names(session.dataset, indices)
    # weight before the class name: gallery captions are cut at the thumbnail's width
    captions = [f"#{i} · " + (f"{times_uniform(relative[i])} · " if relative is not None else "") + name
                for i, name in zip(indices, names)]
    return [(str(path), caption) for path, caption in zip(paths, captions)]

