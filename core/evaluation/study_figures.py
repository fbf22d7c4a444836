"""Figures of the study: metric per model (paper fig. 3) and sample grids (paper fig. 4).

Plotly writes the interactive HTML; static PNGs are drawn with PIL (plotly's PNG export
needs kaleido and a browser, which an offline machine may lack). Input is a list of summary
rows {"pair", "model", "metric", "mean", "ci"} as made by `core.evaluation.study.summarise`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ..data.storage import atomic_write_text
from .evaluate import HIGHER_IS_BETTER

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


FONT_FILES = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # has γ, ±


def _font(size: int = 14):
    from PIL import ImageFont

    for name in FONT_FILES:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)  # Latin only: γ may show as a box


def _to_pil(array: np.ndarray, height: int):
    from PIL import Image

    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).convert("RGB")
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.NEAREST)


def grids_figure(rows: list[tuple[str, list[tuple[str, np.ndarray]]]], panel_height: int = 240):
    """Fig. 4: one row per pair, one labelled panel per model (baseline, DivW γ...)."""
    from PIL import Image, ImageDraw

    font, label_w, title_h, gap = _font(16), 110, 24, 12
    panels = [[(title, _to_pil(grid, panel_height)) for title, grid in row] for _, row in rows]
    width = label_w + max(sum(p.width + gap for _, p in row) for row in panels)
    canvas = Image.new("RGB", (width, len(rows) * (panel_height + title_h + gap) + gap), "white")
    draw = ImageDraw.Draw(canvas)
    for r, ((row_title, _), row) in enumerate(zip(rows, panels)):
        top = gap + r * (panel_height + title_h + gap)
        draw.text((8, top + title_h + panel_height // 2), row_title, fill="black", font=font)
        x = label_w
        for title, panel in row:
            draw.text((x, top), title, fill="black", font=font)
            canvas.paste(panel, (x, top + title_h))
            x += panel.width + gap
    return canvas


def _series(summary: list[dict], metric: str) -> tuple[list[str], dict[str, dict[str, tuple[float, float]]]]:
    """Models in first-seen order and {pair: {model: (mean, ci)}} for one metric."""
    models, by_pair = [], {}
    for row in summary:
        if row["metric"] != metric:
            continue
        models += [row["model"]] if row["model"] not in models else []
        by_pair.setdefault(row["pair"], {})[row["model"]] = (row["mean"], row["ci"])
    return models, by_pair


def metrics_figure_png(summary: list[dict], metrics: list[str], cols: int = 3, panel: tuple[int, int] = (360, 260)):
    """Fig. 3 as a PIL image: one panel per metric, mean ± 95% CI per model, one colour per pair."""
    from PIL import Image, ImageDraw

    rows = -(-len(metrics) // cols)
    canvas = Image.new("RGB", (cols * panel[0], rows * panel[1] + 30), "white")
    draw = ImageDraw.Draw(canvas)
    pairs = sorted({row["pair"] for row in summary})
    for i, metric in enumerate(metrics):
        box = ((i % cols) * panel[0], (i // cols) * panel[1], panel[0], panel[1])
        _draw_panel(draw, box, metric, *_series(summary, metric))
    x = 10
    for j, pair in enumerate(pairs):  # legend
        draw.rectangle((x, rows * panel[1] + 10, x + 12, rows * panel[1] + 22), fill=PALETTE[j % len(PALETTE)])
        draw.text((x + 16, rows * panel[1] + 8), f"pair {pair}", fill="black", font=_font(13))
        x += 110
    return canvas


def _draw_panel(draw, box, metric: str, models: list[str], by_pair: dict) -> None:
    left, top, width, height = box
    plot = (left + 55, top + 28, left + width - 15, top + height - 40)  # x0, y0, x1, y1

    arrow = {True: " ↑ better", False: " ↓ better"}.get(HIGHER_IS_BETTER.get(metric), "")
    draw.text((left + 55, top + 6), metric + arrow, fill="black", font=_font(15))
    values = [v for pair in by_pair.values() for m, c in pair.values() if np.isfinite(m) for v in (m - c, m + c)]
    if not values or not models:
        draw.text((plot[0], (plot[1] + plot[3]) // 2), "no data", fill="grey", font=_font(13))
        return
    low, high = min(values), max(values)
    low, high = (low - 0.5, high + 0.5) if high - low < 1e-12 else (low - 0.05 * (high - low), high + 0.05 * (high - low))
    y_of = lambda v: plot[3] - (v - low) / (high - low) * (plot[3] - plot[1])  # noqa: E731
    draw.rectangle(plot, outline="#888")
    for v in (low, (low + high) / 2, high):
        draw.text((left + 2, y_of(v) - 7), f"{v:.3g}", fill="#444", font=_font(11))
    step = (plot[2] - plot[0]) / len(models)
    for k, model in enumerate(models):
        draw.text((plot[0] + step * k + 4, plot[3] + 6), model, fill="black", font=_font(11))
    for j, (pair, series) in enumerate(sorted(by_pair.items())):
        colour, offset = PALETTE[j % len(PALETTE)], (j - (len(by_pair) - 1) / 2) * 6
        points = [(plot[0] + step * (k + 0.5) + offset, series[m]) for k, m in enumerate(models) if m in series]
        for x, (mean, ci) in points:
            if np.isfinite(mean):
                draw.line((x, y_of(mean - ci), x, y_of(mean + ci)), fill=colour, width=2)
                draw.ellipse((x - 3, y_of(mean) - 3, x + 3, y_of(mean) + 3), fill=colour)
        line = [(x, y_of(m)) for x, (m, _) in points if np.isfinite(m)]
        if len(line) > 1:
            draw.line(line, fill=colour, width=1)


def metrics_figure_html(summary: list[dict], metrics: list[str], path: str | Path, cols: int = 3) -> Path:
    """Fig. 3 as an interactive, self-contained plotly HTML file (plotly.js inlined: works offline)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = -(-len(metrics) // cols)
    figure = make_subplots(rows=rows, cols=cols, subplot_titles=metrics)
    for j, pair in enumerate(sorted({row["pair"] for row in summary})):
        for i, metric in enumerate(metrics):
            models, by_pair = _series(summary, metric)
            series = by_pair.get(pair, {})
            figure.add_trace(
                go.Scatter(
                    x=[m for m in models if m in series], y=[series[m][0] for m in models if m in series],
                    error_y={"type": "data", "array": [series[m][1] for m in models if m in series]},
                    name=f"pair {pair}", legendgroup=pair, showlegend=i == 0,
                    marker={"color": PALETTE[j % len(PALETTE)]},
                ),
                row=i // cols + 1, col=i % cols + 1,
            )
    figure.update_layout(height=320 * rows, title="Metric per model (mean ± 95% CI over seeds)")
    path = Path(path)
    atomic_write_text(path, figure.to_html(include_plotlyjs=True, full_html=True))
    return path
