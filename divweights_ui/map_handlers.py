"""Map tab handlers: a 2-D layout of the embeddings coloured by weight, hover thumbnails, selections.

gradio 6's gr.Plot reports no plotly hover/select events to Python, so assets/studio.js listens on
the plotly graph itself: hover shows customdata's thumbnail; a box/lasso selection writes the
indices into the "Selected indices" textbox, whose change event calls `select_points`.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from core.data import projection
from divweights_ui import figures
from divweights_ui.common import (DEFAULT_MAP_POINTS, MAX_SELECTION, _gallery, _require_features, _thumb_b64,
                                  _user_error, label_names, map_cache_dir, parse_indices)
from divweights_ui.session import Session

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
