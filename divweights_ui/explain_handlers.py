"""Handlers that explain weights and help choose γ: why an image got its weight, the dataset's modes,
browsing every image by weight, the weight-health warning and Suggest γ.

Each is UI values -> one workbench call -> what the page shows (maths in core.diversity.suggest,
.modes, .contribution, .inspect).
"""

from __future__ import annotations

import re

import gradio as gr
import numpy as np

from divweights.data.dataset import class_names_of
from divweights.workbench import Workbench
from divweights_ui import figures
from divweights_ui.common import error, gallery, require_features, require_weights, times_uniform, weights_key
from divweights_ui.session import Session
from divweights_ui.streaming import Throttle, stream, user_error

ORDERS = ("highest weight first", "lowest weight first")
ALL_CLASSES = "all classes"
PER_PAGE = 48


# ----------------------------------------------------------------------------- weight health

def health_note(wb: Workbench, p: np.ndarray, batch_size: int = 64, suggested: float | None = None) -> str:
    """'' for healthy weights, else a warning paragraph (plain Markdown: the API returns it too)."""
    health = wb.weight_health(p, int(batch_size or 64), suggested)
    return "" if health.healthy else f"\n\n⚠️ **Weight health:** {health.message}"


# ----------------------------------------------------------------------------- why this weight?

def index_from_caption(caption: str | None) -> int | None:
    """'#12 · 0.31× · T-shirt' -> 12 (gallery captions start with the index)."""
    found = re.match(r"\s*#(\d+)", caption or "")
    return int(found.group(1)) if found else None


def _checked_index(result, index) -> int:
    n = len(result.p)
    try:
        index = int(index)
    except (TypeError, ValueError):
        raise error(f"Type an image index between 0 and {n - 1}, or click an image above.") from None
    if not 0 <= index < n:
        raise error(f"Image indices go from 0 to {n - 1} (got {index}).")
    return index


def why_weight(session: Session, index, k, *, wb: Workbench):
    """-> (explanation markdown, neighbours gallery) for example `index` under the current weights."""
    result = require_weights(session)
    n = len(result.p)
    index = _checked_index(result, index)
    try:
        why = wb.why(session.features, result.p, index, int(k or 6), current_explanation(session, wb))
    except ValueError as exc:
        raise user_error(exc) from None
    relative = result.p * n
    shown = np.concatenate([[index], why.neighbours])
    paths = [path for path, _ in gallery(session, shown, wb, None)]
    # short captions (cut at the thumbnail's width): similarity first, then the weight
    captions = [f"#{index} · this one · {times_uniform(relative[index])}"] + [
        f"#{i} · sim {s:.2f} · {times_uniform(relative[i])}" for i, s in zip(why.neighbours, why.similarities)]
    return f"**Image #{index}.** {why.text}", list(zip(paths, captions))


PREPARING_WHY = ("*Preparing the explanation of these weights (once per weights; large sets take a few "
                 "seconds)…*")


def with_explanation(session: Session, wb: Workbench, waiting_update):
    """Generator for the first Explain or Export of new weights: yields `waiting_update` at once, then
    computes the current weights' explanation on a worker thread and keeps it (nothing when already kept)."""
    key = session.current_key
    if key in session.explained:
        return
    yield waiting_update
    p = session.current.p
    found = yield from stream(lambda on_progress, should_stop: wb.explain_weights(session.features, p))
    session.explained = {key: found}


def why_weight_streamed(session: Session, index, k, *, wb: Workbench):
    """The Explain button: `why_weight`, with a note on the page while a new weights' explanation is prepared."""
    _checked_index(require_weights(session), index)  # a bad index is said before any wait
    yield from with_explanation(session, wb, (PREPARING_WHY, gr.skip()))
    yield why_weight(session, index, k, wb=wb)


def current_explanation(session: Session, wb: Workbench):
    """The current weights' part of every "why" (contribution.Explained: seconds at n = 60,000), computed
    at the first Explain or Export and kept in the session for the current weights only."""
    key = session.current_key
    if key not in session.explained:
        session.explained = {key: wb.explain_weights(session.features, session.current.p)}
    return session.explained[key]


def why_on_select(wb: Workbench):
    """The handler of a click on any gallery image -> (index box, explanation, neighbours gallery).
    A plain function (not a partial), so gradio sees the SelectData parameter."""

    def why_from_gallery(session: Session, k, evt: gr.SelectData):
        value = evt.value if isinstance(evt.value, dict) else {}
        index = index_from_caption(value.get("caption"))
        if index is None:
            yield gr.skip(), gr.skip(), gr.skip()
            return
        require_weights(session)
        yield from with_explanation(session, wb, (index, PREPARING_WHY, gr.skip()))
        yield (index, *why_weight(session, index, k, wb=wb))

    return why_from_gallery


# ----------------------------------------------------------------------------- modes

def show_modes(session: Session, n_modes, per_mode, *, wb: Workbench):
    """-> (spectrum figure, gallery of the images loading most on each top mode, caption markdown)."""
    result = require_weights(session)
    n_modes, per_mode = int(n_modes or 4), int(per_mode or 8)
    try:
        view = wb.modes(session.features, result.p, n_modes, per_mode)
    except ValueError as exc:
        raise user_error(exc) from None
    relative = result.p * len(result.p)
    pictures = []
    for k, indices in enumerate(view.top_images):
        for (path, _), i in zip(gallery(session, indices, wb, None), indices):
            pictures.append((path, f"M{k + 1} · #{i} · {times_uniform(relative[i])}"))
    top = ", ".join(f"mode {k + 1}: {100 * u:.1f}% → {100 * w:.1f}%" for k, (u, w) in
                    enumerate(zip(view.shares_uniform[:n_modes], view.weighted_along_uniform[:n_modes])))
    text = (f"A **mode** is a direction of variety in the features (an eigenvector of Xᵀ diag(p) X); its share is "
            f"how much of the sampled data's variety lies along it. Share under uniform sampling → under the "
            f"weights: {top}. The Vendi Score is exp of the entropy of all the shares: {view.vs_uniform:.3f} → "
            f"{view.vs_weighted:.3f}. Each row below (M1, M2, …) shows the images that lie furthest along one mode.")
    figure = figures.modes_figure(view.shares_uniform, view.weighted_along_uniform)
    return figure, gr.update(value=pictures, columns=per_mode), text  # one row per mode


# ----------------------------------------------------------------------------- browse by weight

def class_choices(session: Session):
    """The class filter's choices for the loaded dataset."""
    dataset = session.dataset
    if dataset is None or dataset.labels is None:
        return gr.update(choices=[ALL_CLASSES], value=ALL_CLASSES)
    classes = np.unique(dataset.labels)
    names = class_names_of(dataset, classes)
    return gr.update(choices=[ALL_CLASSES] + [(f"{name} ({c})", str(int(c))) for c, name in zip(classes, names)],
                     value=ALL_CLASSES)


def browse(session: Session, order: str, class_choice: str | None, page, *, wb: Workbench):
    """-> (gallery of one page, page number, caption) of every image sorted by weight."""
    result = require_weights(session)
    label = None if class_choice in (None, "", ALL_CLASSES) else int(class_choice)
    try:
        shown = wb.browse(session.dataset, result.p, int(page or 1), order != ORDERS[1], label, PER_PAGE)
    except (TypeError, ValueError) as exc:
        raise user_error(exc) from None
    relative = result.p * len(result.p)
    pictures = gallery(session, shown.indices, wb, relative)
    if len(shown.indices):
        first, last = relative[shown.indices[0]], relative[shown.indices[-1]]
        span = f"weights {times_uniform(first)} to {times_uniform(last)} the uniform share"
    else:
        span = "no images"
    start = (shown.page - 1) * PER_PAGE
    text = (f"Page **{shown.page} of {shown.pages}**: images {start + 1:,}–{start + len(shown.indices):,} of "
            f"{shown.total:,} ({order}), {span}. Click an image to see why it got its weight.")
    return pictures, shown.page, text


def browse_step(session: Session, order: str, class_choice: str | None, page, delta: int, *, wb: Workbench):
    """Previous / next page."""
    return browse(session, order, class_choice, max(1, int(page or 1) + delta), wb=wb)


# ----------------------------------------------------------------------------- suggest γ

def suggest(session: Session, min_ess_percent, max_ratio, steps, lr, *, wb: Workbench):
    """Generator: the γ search streamed -> (session, γ slider, curve figure, explanation).

    The suggested weights join the session's cached weights; the slider is set to the suggested γ so
    that Compute weights uses it at once."""
    from divweights_ui.weights_handlers import weights_config

    features = require_features(session)
    config = weights_config(0.8, steps, lr)
    try:  # 0 or blank = no such limit
        min_ess = float(min_ess_percent) / 100.0 if min_ess_percent else None
        ratio = float(max_ratio) if max_ratio else None
    except (TypeError, ValueError):
        raise error("The minimum ESS and the largest weight must be numbers.") from None
    if min_ess is None and ratio is None:
        raise error("Give a minimum ESS (% of the images) and/or a largest weight (× uniform).")
    if (min_ess is not None and not 0 < min_ess <= 1) or (ratio is not None and ratio < 1):
        raise error("The minimum ESS must be between 0 and 100%, the largest weight at least 1× uniform.")
    throttle = Throttle()

    def on_event(event):
        if event.values.get("gamma") is not None or throttle.due():
            return session, gr.skip(), gr.skip(), f"*Searching…* {event.message}"
        return None

    found = yield from stream(lambda on_progress, should_stop: wb.suggest_gamma(
        features, min_ess, ratio, config, on_progress, should_stop), on_event)
    session.weights[weights_key(found.gamma, config.steps, config.lr)] = found.result
    row = next(r for r in found.curve if r["gamma"] == found.gamma)
    wanted = " and ".join(filter(None, [min_ess and f"ESS ≥ {100 * min_ess:g}% of the images",
                                        ratio and f"no image above {ratio:g}× the uniform share"]))
    text = (f"**Suggested γ = {found.gamma:.2f}**: the largest γ on the grid with {wanted}. Its weights: ESS "
            f"{row['ess']:,.0f} of {len(found.result.p):,} ({100 * row['ess_fraction']:.0f}%), largest weight "
            f"{row['max_relative']:.1f}× uniform, Vendi Score {row['vs']:.3f}. The γ slider is set to it: press "
            f"**Compute weights** to use it (instant: already computed). Searched {len(found.curve)} γ values, "
            f"{found.runs} computed now, the rest from the cache. The paper's γ = 0.8 stays the default.")
    if found.gamma == 0.0:
        text += " No γ above 0 meets this constraint: loosen it, or train on uniform weights."
    figure = figures.suggest_figure(found.curve, found.gamma, min_ess, ratio)
    yield session, found.gamma, figure, text


WHY_HINT = "*Click an image on this tab (or type its number and press **Explain**) to see why it got its weight.*"


def clear_explanations():
    """New data or weights: the why and modes panels are emptied rather than left describing old weights
    -> (why text, why gallery, modes text, modes figure, modes gallery)."""
    return WHY_HINT, [], "", figures.empty_figure("Press “Show modes” for the current weights."), []


def browse_if_weighted(session: Session, order: str, class_choice: str | None, page, *, wb: Workbench):
    """browse for page load and after new weights: empty instead of an error when nothing is weighted."""
    if session.current is None:
        return [], 1, "No weights yet."
    return browse(session, order, class_choice, page, wb=wb)
