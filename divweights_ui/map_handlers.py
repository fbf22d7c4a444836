"""Map tab handlers: a 2-D layout of the embeddings coloured by weight, hover thumbnails, selections.

gradio 6's gr.Plot reports no plotly hover/select events to Python, so assets/studio.js listens on
the plotly graph itself: hover shows customdata's thumbnail; a box/lasso selection writes the
indices into the "Selected indices" textbox, whose change event calls `select_points`.
"""

from __future__ import annotations

import gradio as gr

from divweights.data.dataset import label_names
from divweights.diversity.inspect import relative_weights
from divweights.workbench import Workbench
from divweights_ui import figures
from divweights_ui.common import (DEFAULT_MAP_POINTS, HOVER_THUMBS_MAX, MAX_SELECTION, error, gallery, parse_indices,
                                  require_features, thumb_b64)
from divweights_ui.session import Session
from divweights_ui.streaming import stream, user_error


def draw_map(session: Session, method: str, size_by_weight: bool, max_points, colour_by: str = "weight", *,
             wb: Workbench):
    """-> (session, plotly map, note markdown). method: 'UMAP', 'PCA' or 'auto' (UMAP when ready).

    Large sets: only a fixed sample is laid out (UMAP of 70,000 points takes minutes on a CPU); the
    weights always cover every example. Layouts are cached on disk; the session keeps the last one,
    so new weights only recolour it.
    """
    features = require_features(session)
    try:
        max_points = int(max_points or DEFAULT_MAP_POINTS)
    except (TypeError, ValueError):
        raise error("Dots drawn must be a number.") from None
    requested = (method or "auto").lower()
    layout = session.layout
    if layout is None or requested != layout.method or len(layout.indices) != min(max_points, len(features)):
        try:
            fresh = wb.map_layout(features, requested, max_points)  # "auto": UMAP once it is ready (cached)
        except ValueError as exc:
            raise user_error(exc) from exc
        if layout is None or fresh.method != layout.method or len(fresh.indices) != len(layout.indices):
            layout = session.layout = fresh
    return session, *_map_view(session, layout, size_by_weight, colour_by)


def _map_view(session: Session, layout, size_by_weight: bool, colour_by: str):
    """(figure, note) of a layout under the session's current weights."""
    indices, n = layout.indices, len(session.dataset)
    p = session.current_p()
    relative = None if p is None else relative_weights(p)[indices]
    # a hover picture is ~0.7 KB of the page's data per dot: beyond HOVER_THUMBS_MAX dots the hover shows text only
    thumbs = [thumb_b64(session, int(i)) for i in indices] if len(indices) <= HOVER_THUMBS_MAX else [""] * len(indices)
    figure = figures.map_figure(layout.coords, indices, relative, label_names(session.dataset, indices), thumbs,
                                layout.method, n, bool(size_by_weight), colour_by == "class")
    note = layout.note
    if len(indices) < n:
        note += (f"\n\nShowing a fixed random sample of {len(indices):,} of {n:,} images "
                 "(raise *Dots drawn* for more); the weights always use all of them.")
    if len(indices) > HOVER_THUMBS_MAX:
        note += (f"\n\nWith more than {HOVER_THUMBS_MAX:,} dots, hovering shows a dot's number, class and weight "
                 "without its picture (that would make the page tens of MB); select dots to see their images.")
    return figure, note.strip()


def draw_map_streamed(session: Session, method: str, size_by_weight: bool, max_points, colour_by: str = "weight", *,
                      wb: Workbench):
    """The Draw map button (a generator): a UMAP layout that is not cached yet is computed on a worker
    thread, with a PCA map shown at once and the progress in the note; Stop ends it (the PCA map stays).
    Anything else is `draw_map` at once."""
    features = require_features(session)
    try:
        points = min(int(max_points or DEFAULT_MAP_POINTS), len(features))
    except (TypeError, ValueError):
        raise error("Dots drawn must be a number.") from None
    layout = session.layout
    wants_umap = (method or "").lower() == "umap"
    if not wants_umap or (layout is not None and layout.method == "umap" and len(layout.indices) == points):
        yield draw_map(session, method, size_by_weight, max_points, colour_by, wb=wb)
        return
    session, quick, _ = draw_map(session, "pca", size_by_weight, max_points, colour_by, wb=wb)
    yield session, quick, f"*Computing the UMAP layout of {points:,} dots in the background…* (PCA meanwhile)"

    def on_event(event):
        return session, gr.skip(), f"*{event.message}* (PCA meanwhile; **Stop** keeps it)"

    try:
        fresh = yield from stream(lambda on_progress, should_stop: wb.map_layout(
            features, "umap", int(max_points or DEFAULT_MAP_POINTS), on_progress, should_stop), on_event)
    except ValueError as exc:
        raise user_error(exc) from exc
    session.layout = fresh
    yield session, *_map_view(session, fresh, size_by_weight, colour_by)


def recolour_map(session: Session, method: str, size_by_weight: bool, max_points, colour_by: str = "weight", *,
                 wb: Workbench):
    """Redraw the map after new weights or data without waiting: UMAP only once it is ready."""
    if session.ready is None:
        return session, figures.empty_figure("Load a dataset to see its map."), ""
    return draw_map(session, "pca" if (method or "").lower() == "pca" else "auto", size_by_weight, max_points,
                    colour_by, wb=wb)


def select_points_quietly(session: Session, indices_text: str, *, wb: Workbench):
    """select_points while the user types: a problem goes into the note instead of an error toast."""
    try:
        return select_points(session, indices_text, wb=wb)
    except gr.Error as exc:
        return gr.skip(), f"*{exc.message}*"


def select_points(session: Session, indices_text: str, *, wb: Workbench):
    """Indices (from a lasso/box selection or typed) -> (gallery, summary markdown)."""
    require_features(session)
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
    return gallery(session, shown, wb, None if p is None else relative_weights(p)), text

