"""Plotly figures the studio shows. Pure functions: arrays in, `go.Figure` out (no gradio here)."""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

LOG2_RANGE = 6  # map colours saturate at 1/64× and 64× the uniform weight
FONT = dict(size=13)
TRANSPARENT = "rgba(0,0,0,0)"  # the page's own background (light or dark) shows through
GRID = "rgba(128,128,128,0.25)"  # grey lines that read on white and on near-black alike
# Category10 (plotly's D3): ten mid-tone hues, each readable on white and on near-black, told apart by
# colour-blind viewers better than plotly's default (whose purple and blue were hard to tell apart)
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def class_colours(n: int) -> list[str]:
    """n distinct colours, the same in light and dark mode: Category10's ten, beyond that evenly spaced
    hues of plotly's Turbo scale (its darkest ends left out: they vanish on a dark page)."""
    if n <= len(CLASS_COLOURS):
        return list(CLASS_COLOURS[:n])
    from plotly.colors import sample_colorscale

    return sample_colorscale("Turbo", [0.08 + 0.84 * i / (n - 1) for i in range(n)])


@functools.lru_cache(maxsize=1)
def page_template():
    """plotly_white with see-through paper and plot backgrounds and grey grid lines, so a chart sits on
    the page's own background in light and dark mode; the studio's CSS gives its text the page's text
    colour (assets/studio.css). One read-only object shared by every figure."""
    import plotly.graph_objects as go
    import plotly.io as pio

    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.update(paper_bgcolor=TRANSPARENT, plot_bgcolor=TRANSPARENT, colorway=list(CLASS_COLOURS))
    for axis in (template.layout.xaxis, template.layout.yaxis):
        axis.update(gridcolor=GRID, linecolor=GRID, zerolinecolor="rgba(128,128,128,0.5)")
    return template


def _layout(fig, title: str, height: int = 340):
    fig.update_layout(title=dict(text=title, x=0.01), height=height, font=FONT,
                      margin=dict(l=55, r=20, t=45, b=45), template=page_template(),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    return fig


def _times(log2_value: int) -> str:
    """2 -> '4×', -2 -> '1/4×', 0 -> '1× (uniform)'."""
    if log2_value == 0:
        return "1× uniform"
    return f"{2 ** log2_value}×" if log2_value > 0 else f"1/{2 ** -log2_value}×"


def empty_figure(message: str, height: int = 300):
    """A blank figure carrying a sentence, for 'nothing to show yet'."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=15, color="#666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "", height)


def progress_figure(history: Sequence[dict], vs_uniform: float | None, steps: int | None = None):
    """Live chart of a weights run: VS per step (left axis) and ESS (right axis)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    step = [row["step"] for row in history]
    fig.add_trace(go.Scatter(x=step, y=[row["vs"] for row in history], name="Vendi Score (weighted)",
                             mode="lines", line=dict(color="#6d28d9", width=3)), secondary_y=False)
    fig.add_trace(go.Scatter(x=step, y=[row["ess"] for row in history], name="ESS (examples' worth)",
                             mode="lines", line=dict(color="#0891b2", dash="dot")), secondary_y=True)
    if vs_uniform is not None:
        fig.add_hline(y=vs_uniform, line=dict(color="#999", dash="dash"),
                      annotation_text=f"uniform VS {vs_uniform:.2f}", annotation_position="top left")  # clear of the ESS curve
    fig.update_xaxes(title_text="optimisation step", range=[0, max(steps or 0, len(step), 1)])
    fig.update_yaxes(title_text="Vendi Score", secondary_y=False)
    fig.update_yaxes(title_text="effective sample size", secondary_y=True, rangemode="tozero")
    return _layout(fig, "Diversity while optimising")


def sweep_figure(gammas: Sequence[float], vs: Sequence[float], ess: Sequence[float],
                 entropy: Sequence[float], chosen_gamma: float | None):
    """The γ trade-off: weighted VS against ESS, one point per γ, the chosen γ marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    labels = [f"γ={g:.2f}" for g in gammas]
    fig.add_trace(go.Scatter(
        x=list(ess), y=list(vs), mode="lines+markers+text", text=labels, textposition="top center",
        customdata=np.column_stack([gammas, entropy]), name="γ sweep", line=dict(color="#6d28d9"),
        hovertemplate="γ=%{customdata[0]:.2f}<br>VS=%{y:.3f}<br>ESS=%{x:.1f}"
                      "<br>entropy=%{customdata[1]:.3f}<extra></extra>"))
    if chosen_gamma is not None:
        hit = [i for i, g in enumerate(gammas) if abs(g - chosen_gamma) < 1e-9]
        if hit:
            i = hit[0]
            fig.add_trace(go.Scatter(x=[ess[i]], y=[vs[i]], mode="markers", name=f"chosen γ={gammas[i]:.2f}",
                                     marker=dict(symbol="star", size=20, color="#f59e0b",
                                                 line=dict(color="black", width=1)),
                                     hoverinfo="skip"))
    fig.update_xaxes(title_text="effective sample size (higher = closer to uniform)")
    fig.update_yaxes(title_text="weighted Vendi Score")
    _layout(fig, "γ trade-off: more diversity (up) costs effective sample size (left)", 400)
    fig.update_layout(margin=dict(l=70, t=60))
    return fig


def histogram_figure(counts: np.ndarray, log2_edges: np.ndarray, members: Sequence[str] | None = None):
    """Bars of how many examples get each relative weight, on a log2 axis (0 = the uniform share).
    members: per bar, its examples as index ranges; the page's script selects them on a click."""
    import plotly.graph_objects as go

    centres = (log2_edges[:-1] + log2_edges[1:]) / 2
    customdata = np.empty((len(centres), 2), dtype=object)
    customdata[:, 0] = np.exp2(centres)
    customdata[:, 1] = list(members) if members is not None else ""
    fig = go.Figure(go.Bar(x=centres, y=counts, width=np.diff(log2_edges), marker_color="#6d28d9",
                           customdata=customdata,
                           hovertemplate="weight ≈ %{customdata[0]:.3g}× uniform<br>%{y} examples · click: show them"
                                         "<extra></extra>"))
    fig.add_vline(x=0.0, line=dict(color="#999", dash="dash"), annotation_text="uniform")
    low, high = int(np.floor(log2_edges[0])), int(np.ceil(log2_edges[-1]))
    step = max(1, (high - low) // 8)
    ticks = np.arange(low, high + 1, step)
    fig.update_xaxes(title_text="weight relative to uniform (log scale)", tickvals=ticks,
                     ticktext=[_times(int(t)).replace(" uniform", "") for t in ticks])
    fig.update_yaxes(title_text="examples")
    return _layout(fig, "How the weights are spread")


def class_mass_figure(classes: Sequence[str], uniform: np.ndarray, weighted: np.ndarray):
    """Grouped bars: share of draws per class under uniform vs diversity weights."""
    import plotly.graph_objects as go

    fig = go.Figure([
        go.Bar(x=list(classes), y=uniform, name="uniform", marker_color="#9ca3af"),
        go.Bar(x=list(classes), y=weighted, name="diversity weights", marker_color="#6d28d9"),
    ])
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="share of draws", tickformat=".0%")
    return _layout(fig, "Probability mass per class")


def map_figure(coords: np.ndarray, indices: np.ndarray, relative: np.ndarray | None, labels: Sequence[str],
               thumbs_b64: Sequence[str], method: str, n_total: int, size_by_weight: bool = False,
               by_class: bool = False):
    """Scatter of the drawn points' 2-D layout (coords (m, 2), row j = example indices[j]), coloured by
    relative weight n*p (m,) on a log scale (None: no weights yet, all 1×).

    customdata per point: [index, label, relative weight, base64 PNG]; the page's script reads
    the PNG on hover (plotly cannot draw images in its own hover labels) and the index on
    box/lasso selection.
    """
    import plotly.graph_objects as go

    rel = np.ones(len(indices)) if relative is None else np.asarray(relative, dtype=np.float64)
    sizes = 4 + 10 * np.sqrt(rel / max(rel.max(), 1e-12)) if size_by_weight else 6
    customdata = np.empty((len(indices), 4), dtype=object)
    customdata[:, 0] = indices
    customdata[:, 1] = list(labels)
    customdata[:, 2] = [float(f"{r:.3g}") for r in rel]
    customdata[:, 3] = list(thumbs_b64)
    # colour on a log2 scale: weights span orders of magnitude and 1× (uniform) sits in the middle
    colour = np.clip(np.log2(np.maximum(rel, 1e-12)), -LOG2_RANGE, LOG2_RANGE)
    ticks = np.arange(-LOG2_RANGE, LOG2_RANGE + 1, 2)
    fig = go.Figure(go.Scattergl(
        x=coords[:, 0], y=coords[:, 1], mode="markers", customdata=customdata,
        marker=dict(color=colour, colorscale="RdBu_r", cmin=-LOG2_RANGE, cmax=LOG2_RANGE, cmid=0, size=sizes,
                    opacity=0.85, showscale=True, line=dict(width=0.3, color="#333"),
                    colorbar=dict(title="weight<br>× uniform", tickvals=ticks,
                                  ticktext=[_times(t) for t in ticks])),
        hoverinfo="none",  # the page script shows a tooltip with the thumbnail, index, label and weight
    ))
    if by_class:  # one trace per class, with a legend; the points (and their customdata) stay the same
        names = sorted(set(labels))  # a class keeps its colour whichever images the map draws
        fig = go.Figure([go.Scattergl(x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=name,
                                      customdata=customdata[mask], hoverinfo="none",
                                      marker=dict(size=sizes if np.isscalar(sizes) else sizes[mask], opacity=0.85,
                                                  color=colour, line=dict(width=0.3, color="#333")))
                         for name, colour in zip(names, class_colours(len(names)))
                         for mask in [np.asarray(labels) == name]])
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    _layout(fig, f"{method.upper()} map of the embeddings ({len(indices):,} of {n_total:,} images drawn)", 560)
    fig.update_layout(dragmode="lasso", clickmode="event+select", hovermode="closest")
    return fig


# ----------------------------------------------------------------------------- Learn tab, modes, γ search

MODE_COLOURS = ("#6d28d9", "#f59e0b", "#0891b2", "#dc2626", "#16a34a", "#db2777", "#4b5563", "#92400e")


def eigenvalue_figure(eigenvalues: Sequence[float], vs: float):
    """Bars of the spectrum of diag(√p) K diag(√p) (eq. 3): the shares whose entropy gives VS."""
    import plotly.graph_objects as go

    lam = list(eigenvalues)
    fig = go.Figure(go.Bar(x=[f"λ{i + 1}" for i in range(len(lam))], y=lam, marker_color="#6d28d9",
                           text=[f"{v:.3f}" for v in lam], textposition="outside",
                           hovertemplate="%{x} = %{y:.4f}<extra></extra>"))
    fig.update_yaxes(title_text="eigenvalue (share)", range=[0, 1.1])
    return _layout(fig, f"Eigenvalues of diag(√p) K diag(√p): Vendi Score {vs:.4f}", 300)


def mixture_figure(points: np.ndarray, modes: np.ndarray, p: np.ndarray, title: str):
    """The toy mixture: one colour per mode, dot area ∝ weight (p (n,); uniform = the middle size)."""
    import plotly.graph_objects as go

    rel = np.asarray(p) * len(p)
    sizes = np.clip(6 * np.sqrt(rel), 2, 40)  # area ∝ weight; 1× uniform = 6 px
    fig = go.Figure()
    for k in range(int(modes.max()) + 1):
        mask = modes == k
        fig.add_trace(go.Scattergl(
            x=points[mask, 0], y=points[mask, 1], mode="markers", name=f"mode {k + 1}",
            marker=dict(size=sizes[mask], color=MODE_COLOURS[k % len(MODE_COLOURS)], opacity=0.7,
                        line=dict(width=0.4, color="#111")),
            customdata=rel[mask], hovertemplate="weight %{customdata:.2f}× uniform<extra></extra>"))
    fig.update_xaxes(range=[-2.2, 2.2], zeroline=False, title_text="x")
    fig.update_yaxes(range=[-2.2, 2.2], zeroline=False, scaleanchor="x", title_text="y")
    _layout(fig, title, 480)
    fig.update_layout(uirevision="mixture")  # frames replace the data, not the user's zoom
    return fig


def mode_mass_figure(uniform: Sequence[float], weighted: Sequence[float]):
    """Mass per mode: the share of points (uniform) against the diversity weights."""
    import plotly.graph_objects as go

    names = [f"mode {k + 1}" for k in range(len(uniform))]
    fig = go.Figure([go.Bar(x=names, y=list(uniform), name="uniform", marker_color="#9ca3af"),
                     go.Bar(x=names, y=list(weighted), name="diversity weights", marker_color="#6d28d9",
                            text=[f"{w:.0%}" for w in weighted], textposition="outside")])
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="share of draws", tickformat=".0%", range=[0, 1.05])
    return _layout(fig, "Mass per mode", 300)


def modes_figure(shares_uniform: Sequence[float], along_weighted: Sequence[float], shown: int = 12):
    """The dataset's leading modes: their share of the variety under uniform sampling and under the
    diversity weights (same directions): mode balancing made visible."""
    import plotly.graph_objects as go

    m = min(shown, len(shares_uniform))
    names = [f"mode {k + 1}" for k in range(m)]
    fig = go.Figure([go.Bar(x=names, y=list(shares_uniform[:m]), name="uniform sampling", marker_color="#9ca3af"),
                     go.Bar(x=names, y=list(along_weighted[:m]), name="diversity weights", marker_color="#6d28d9")])
    fig.update_layout(barmode="group")
    fig.update_yaxes(title_text="share of the variety (eigenvalue)", tickformat=".0%")
    return _layout(fig, "The dataset's modes: the weights even out their shares", 340)


def suggest_figure(curve: Sequence[dict], chosen: float, min_ess_fraction: float | None,
                   max_weight_ratio: float | None):
    """The γ search: ESS (% of n) against γ with the constraint line, the chosen γ starred; the
    largest weight (× uniform) on the right axis when it is constrained."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    gammas = [row["gamma"] for row in curve]
    ess = [100 * row["ess_fraction"] for row in curve]
    colours = ["#16a34a" if row["meets"] else "#dc2626" for row in curve]
    fig.add_trace(go.Scatter(x=gammas, y=ess, mode="lines+markers", name="ESS (% of n)", line=dict(color="#0891b2"),
                             marker=dict(size=10, color=colours, line=dict(color="#111", width=1)),
                             hovertemplate="γ=%{x:.2f}<br>ESS %{y:.1f}% of n<extra></extra>"), secondary_y=False)
    if min_ess_fraction is not None:
        fig.add_hline(y=100 * min_ess_fraction, line=dict(color="#dc2626", dash="dash"),
                      annotation_text=f"minimum ESS {100 * min_ess_fraction:g}%", annotation_position="top right")
    if max_weight_ratio is not None:
        fig.add_trace(go.Scatter(x=gammas, y=[row["max_relative"] for row in curve], mode="lines+markers",
                                 name="largest weight (× uniform)", line=dict(color="#f59e0b", dash="dot")),
                      secondary_y=True)
        fig.add_hline(y=max_weight_ratio, line=dict(color="#f59e0b", dash="dash"), secondary_y=True,
                      annotation_text=f"max {max_weight_ratio:g}× uniform", annotation_position="top left")
    hit = [row for row in curve if row["gamma"] == chosen]
    if hit:
        fig.add_trace(go.Scatter(x=[chosen], y=[100 * hit[0]["ess_fraction"]], mode="markers",
                                 name=f"suggested γ={chosen:.2f}", hoverinfo="skip",
                                 marker=dict(symbol="star", size=22, color="#f59e0b", line=dict(color="black", width=1))),
                      secondary_y=False)
    fig.update_xaxes(title_text="γ (green: meets the constraint, red: does not)", range=[-0.03, 1.03])
    fig.update_yaxes(title_text="effective sample size (% of n)", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="largest weight (× uniform)", secondary_y=True, showgrid=False,
                     visible=max_weight_ratio is not None)
    return _layout(fig, "Suggest γ: the largest γ that keeps the weights healthy", 380)
