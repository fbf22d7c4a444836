"""What a study comparing weighting schemes concludes, in plain words: per class pair, which model
(scheme) gave the highest VS and which the lowest wFID, with their 95% CIs, and whether the runner-up's
interval overlaps (then the ranking is not settled by these seeds). Also the data under each scheme."""

from __future__ import annotations

import html

import numpy as np

from .study_plan import model_title

SCHEME_COLUMNS = ("pair", "model", "n_seeds", "vs", "entropy", "ess", "max_relative")


def best_of(summary: list[dict], metric: str, higher: bool) -> list[dict]:
    """Per pair, the model with the best mean of `metric`: {pair, metric, model, mean, ci, runner_up,
    runner_mean, runner_ci, overlap}. Models without a finite mean are left out."""
    by_pair: dict[str, list[dict]] = {}
    for row in summary:
        if row["metric"] == metric and np.isfinite(row["mean"]):
            by_pair.setdefault(row["pair"], []).append(row)
    verdicts = []
    for pair, rows in by_pair.items():
        ranked = sorted(rows, key=lambda r: -r["mean"] if higher else r["mean"])
        best, runner = ranked[0], ranked[1] if len(ranked) > 1 else None
        verdict = {"pair": pair, "metric": metric, "model": best["model"], "mean": best["mean"], "ci": _ci(best),
                   "n": int(best.get("n", 0))}
        if runner is not None:
            verdict |= {"runner_up": runner["model"], "runner_mean": runner["mean"], "runner_ci": _ci(runner),
                        "overlap": _overlap(best, runner)}
        verdicts.append(verdict)
    return verdicts


def _ci(row: dict) -> float:
    return float(row["ci"]) if np.isfinite(row["ci"]) else 0.0


def _overlap(a: dict, b: dict) -> bool:
    return abs(a["mean"] - b["mean"]) <= _ci(a) + _ci(b)


def verdict_sentences(summary: list[dict]) -> list[str]:
    """One sentence per pair and metric (VS, wFID), e.g. "Pair 0-1: the highest VS came from
    DivW γ=1 (4.12 ± 0.31, 95% CI over 2 seeds); runner-up uniform (3.80 ± 0.20): the intervals overlap."""
    sentences = []
    for metric, higher, word in (("vs", True, "highest VS"), ("wfid", False, "lowest wFID")):
        for v in best_of(summary, metric, higher):
            text = f"Pair {v['pair']}: the {word} came from {model_title(v['model'])} ({v['mean']:.4g} ± {v['ci']:.2g})"
            if "runner_up" in v:
                settled = ("the intervals overlap, so these seeds do not settle it" if v["overlap"] else
                           "the intervals do not overlap")
                if v["n"] < 2:
                    settled = "one seed only, so there is no confidence interval: run more seeds to tell"
                text += f"; runner-up {model_title(v['runner_up'])} ({v['runner_mean']:.4g} ± {v['runner_ci']:.2g}): {settled}"
            sentences.append(text + ".")
    return sentences


def verdict_html(summary: list[dict]) -> str:
    sentences = verdict_sentences(summary)
    if not sentences:
        return ""
    items = "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
    return f"<h2>Which weighting did best (mean ± 95% CI over seeds)</h2><ul>{items}</ul>"


def scheme_table(rows: list[dict]) -> list[dict]:
    """The data under each weighting, mean over seeds per (pair, model)."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["pair"], row["model"]), []).append(row)
    return [{"pair": pair, "model": model, "n_seeds": len(group),
             **{k: float(np.mean([r[k] for r in group])) for k in ("vs", "entropy", "ess", "max_relative")}}
            for (pair, model), group in groups.items()]


def scheme_table_html(table: list[dict]) -> str:
    if not table:
        return ""
    body = "".join(f"<tr><td>{html.escape(r['pair'])}</td><td>{html.escape(model_title(r['model']))}</td>"
                   f"<td>{r['vs']:.3f}</td><td>{r['entropy']:.3f}</td><td>{r['ess']:.1f}</td>"
                   f"<td>{r['max_relative']:.2f}</td><td>{r['n_seeds']}</td></tr>" for r in table)
    return ("<h2>The data under each weighting (mean over seeds)</h2><table><tr><th>pair</th><th>weighting</th>"
            "<th>VS</th><th>entropy</th><th>ESS</th><th>largest weight (× uniform)</th><th>seeds</th></tr>"
            f"{body}</table>")
