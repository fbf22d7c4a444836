"""Files a study writes: table1.csv/.md, metrics.csv, metrics_summary.csv, fig3.html/.png,
fig4.png and a self-contained report.html (images inlined)."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .. import __version__
from ..data.storage import atomic_write_bytes, atomic_write_text
from .evaluate import HIGHER_IS_BETTER, METRICS
from .study_figures import grids_figure, metrics_figure_html, metrics_figure_png
from .study_plan import metric_rows, model_title, pair_name, run_dir_of, scheme_rows, summarise, table1_rows
from .study_verdict import SCHEME_COLUMNS, scheme_table, scheme_table_html, verdict_html, verdict_sentences

TABLE1_COLUMNS = ("pair", "gamma", "n_seeds", "vs_uniform_mean", "vs_uniform_std", "vs_weighted_mean", "vs_weighted_std", "embedder")
FIGURE_TITLES = {"fig3.png": "Fig. 3: each metric per model (mean ± 95% CI over seeds)",
                 "fig4.png": "Fig. 4: samples of the first seed, baseline vs DivW per γ"}
METRIC_COLUMNS = ("pair", "seed", "model", *METRICS, "kid_std", "is_source", "embedder", "n_gen")


def table1(rows: list[dict]) -> list[dict]:
    """Table 1: VS with uniform and with diversity weights, mean ± std (ddof 1) over seeds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["pair"], row["gamma"]), []).append(row)
    table = []
    for (pair, gamma), group in sorted(groups.items()):
        uniform, weighted = [r["vs_uniform"] for r in group], [r["vs_weighted"] for r in group]
        table.append({"pair": pair, "gamma": gamma, "n_seeds": len(group),
                      "vs_uniform_mean": float(np.mean(uniform)), "vs_uniform_std": _std(uniform),
                      "vs_weighted_mean": float(np.mean(weighted)), "vs_weighted_std": _std(weighted),
                      "embedder": group[0]["embedder"]})
    return table


def _std(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def csv_text(rows: list[dict], columns) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def table1_markdown(table: list[dict]) -> str:
    lines = ["| pair | γ | VS uniform | VS diversity weights | seeds |", "|---|---|---|---|---|"]
    lines += [f"| {r['pair']} | {r['gamma']:g} | {r['vs_uniform_mean']:.3f} ± {r['vs_uniform_std']:.3f} | "
              f"{r['vs_weighted_mean']:.3f} ± {r['vs_weighted_std']:.3f} | {r['n_seeds']} |" for r in table]
    embedder = table[0]["embedder"] if table else "?"
    return "\n".join(["# Table 1: Vendi Score of the data, uniform vs diversity weights", "",
                      f"Mean ± std over seeds; features: {embedder}.", "", *lines]) + "\n"


def fig4(config, out: Path):
    """Fig. 4: the first seed's evaluation grids, one row per pair, baseline then DivW per γ."""
    from PIL import Image

    rows = []
    for pair in config.pairs:
        panels = []
        for model in config.models():
            path = run_dir_of(out, pair, 0, model) / "eval_grid.png"
            if path.exists():
                panels.append((model_title(model), np.asarray(Image.open(path).convert("RGB"))))
        if panels:
            rows.append((f"pair {pair_name(pair)}", panels))
    return grids_figure(rows) if rows else None


def write_outputs(config, done: dict, out: Path) -> list[Path]:
    table, rows = table1(table1_rows(done)), metric_rows(done)
    summary = summarise(rows)
    files = [atomic_write_text(out / "table1.csv", csv_text(table, TABLE1_COLUMNS)),
             atomic_write_text(out / "table1.md", table1_markdown(table)),
             atomic_write_text(out / "metrics.csv", csv_text(rows, METRIC_COLUMNS)),
             atomic_write_text(out / "metrics_summary.csv", csv_text(summary, ("pair", "model", "metric", "n", "mean", "ci")))]
    images = {}
    if rows:
        files.append(metrics_figure_html(summary, list(METRICS), out / "fig3.html"))
        images["fig3.png"] = metrics_figure_png(summary, list(METRICS))
    grid = fig4(config, out)
    if grid is not None:
        images["fig4.png"] = grid
    for name, image in images.items():
        files.append(atomic_write_bytes(out / name, _png(image)))
    schemes = scheme_table(scheme_rows(done))
    if schemes or getattr(config, "schemes", ()):
        files.append(atomic_write_text(out / "schemes.csv", csv_text(schemes, SCHEME_COLUMNS)))
        files.append(atomic_write_text(out / "verdict.md", "\n".join(f"- {s}" for s in verdict_sentences(summary)) + "\n"))
    extra = verdict_html(summary) + scheme_table_html(schemes)
    files.append(atomic_write_text(out / "report.html", report_html(config, table, summary, images, extra)))
    return files


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def summary_html(summary: list[dict]) -> str:
    """Metric table: one row per (pair, model), mean ± 95% CI per metric."""
    cells: dict[tuple, dict] = {}
    for row in summary:
        cells.setdefault((row["pair"], row["model"]), {})[row["metric"]] = row
    arrows = {m: "↑" if HIGHER_IS_BETTER[m] else "↓" for m in METRICS}
    head = "".join(f"<th>{html.escape(m)} {arrows[m]}</th>" for m in METRICS)
    body = "".join(
        f"<tr><td>{html.escape(pair)}</td><td>{html.escape(model)}</td>"
        + "".join(f"<td>{_cell(metrics.get(m))}</td>" for m in METRICS) + "</tr>"
        for (pair, model), metrics in cells.items()
    )
    return f"<table><tr><th>pair</th><th>model</th>{head}</tr>{body}</table>"


def _cell(row: dict | None) -> str:
    if row is None or not np.isfinite(row["mean"]):
        return "–"
    return f"{row['mean']:.4g} ± {row['ci']:.2g}"


def report_html(config, table: list[dict], summary: list[dict], images: dict, extra: str = "") -> str:
    """The self-contained report; `extra` (HTML: which weighting did best, the data under each) goes
    after the metric table."""
    t1 = "".join(f"<tr><td>{html.escape(r['pair'])}</td><td>{r['gamma']:g}</td><td>{r['vs_uniform_mean']:.3f} ± {r['vs_uniform_std']:.3f}</td>"
                 f"<td>{r['vs_weighted_mean']:.3f} ± {r['vs_weighted_std']:.3f}</td><td>{r['n_seeds']}</td></tr>" for r in table)
    figures = "".join(f"<h2>{html.escape(FIGURE_TITLES.get(name, name))}</h2><img alt='{name}' src='data:image/png;base64,"
                      f"{base64.b64encode(_png(image)).decode()}'>" for name, image in images.items())
    config_text = html.escape(json.dumps(asdict(config)))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>divweights study</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}img{{max-width:100%}}</style>
</head><body><h1>Diversity weights study ({html.escape(getattr(config, "model", "wgan-gp"))})</h1>
<p>divweights {__version__}. Settings: <code>{config_text}</code></p>
<h2>Table 1: Vendi Score of the data (mean ± std over seeds)</h2>
<table><tr><th>pair</th><th>γ</th><th>VS uniform</th><th>VS diversity weights</th><th>seeds</th></tr>{t1}</table>
<h2>Metrics per model (mean ± 95% CI over seeds)</h2>
<p>wFID is measured against the diversity weights of γ = {config.wfid_gamma():g}; every number uses the
features of <b>{html.escape(table[0]['embedder'] if table else config.embedder)}</b>. Interactive plot: <a href="fig3.html">fig3.html</a>.</p>
{summary_html(summary)}
{extra}
{figures}
</body></html>
"""
