import json

import gradio as gr
import numpy as np
import pytest

from core.evaluation.evaluate import METRICS
from core.workbench import Workbench
from divweights_ui import compare_tab
from divweights_ui.session import Session


def test_the_tab_exposes_stable_endpoints(data_root):
    with gr.Blocks() as demo:
        state = gr.State(Session())
        with gr.Tab("Compare"):
            compare_tab.build_compare_tab(state, Workbench(data_root))
    public = {d["api_name"] for d in demo.get_config_file()["dependencies"] if d.get("api_visibility", "public") == "public"}
    assert {"compare_runs", "evaluate_run"} <= public


def test_compare_shows_grids_and_asks_for_evaluation(trained_run, data_root):
    choices = compare_tab.run_choices(Workbench(data_root))
    assert [value for _, value in choices] == ["runs/base"]
    grids, table, figure, note = compare_tab.compare_runs(Session(), ["runs/base"], wb=Workbench(data_root))
    assert len(grids) == 1 and "baseline" in grids[0][1]
    assert isinstance(grids[0][0], np.ndarray)  # pixels, not a path under runs/ (gradio refuses to serve those)
    assert "No saved evaluations" in table and "Evaluate" in note
    refreshed = compare_tab.refresh_runs(["runs/base", "runs/deleted"], wb=Workbench(data_root))
    assert refreshed.value == ["runs/base"]  # ticks of runs that still exist are kept
    assert refreshed.info.startswith("Studio runs")


def test_an_empty_run_list_says_where_runs_come_from(data_root):
    refreshed = compare_tab.refresh_runs([], wb=Workbench(data_root))
    assert refreshed.choices == [] and "No runs yet" in refreshed.info


def test_evaluate_scores_runs_and_draws_the_coverage_views(trained_run, data_root):
    from core.cli import main

    assert main(["train", "digits", "--classes", "0,1", "--per-class", "40", "--gamma", "1.0", "--preset", "quick",
                 "--steps", "1", "--batch-size", "16", "--run-dir", str(data_root / "runs" / "divw"), "--no-queue", "--device", "cpu"]) == 0
    outputs = list(compare_tab.evaluate_runs(Session(), ["runs/base", "runs/divw"], 60, wb=Workbench(data_root),
                                             progress=lambda *a, **k: None))[-1]
    grids, table, figure, coverage, mass, nearest, note = outputs
    saved = json.loads((trained_run / "eval.json").read_text())
    divw = json.loads((data_root / "runs" / "divw" / "eval.json").read_text())
    assert saved["n_gen"] == 60 and "| baseline | pixels | 1 |" in table
    assert saved["wfid"] != saved["fid"]  # the baseline is measured against the DivW run's target
    assert "training weights of divw" in note and ("PCA" in note or "UMAP" in note)
    assert divw["embedder"] == "pixels" and len(coverage.data) == 3
    assert [bar.name for bar in mass.data] == ["data (uniform)", "diversity-weighted target", "baseline", "DivW gamma=1 (pixels)"]
    for bar in mass.data:
        assert np.asarray(bar.y).sum() == pytest.approx(1.0)
    assert len(nearest) == 2 * 2 * compare_tab.NEAREST_SHOWN


def test_unlabelled_data_says_what_cannot_be_drawn(trained_run, data_root):
    import dataclasses

    from core.evaluation.evaluate import EvalConfig

    views = Workbench(data_root).coverage([trained_run], EvalConfig(n_samples=20, device="cpu"), samples=20)
    assert len(compare_tab.coverage_figure(views).data) == 2  # the data, then the one model
    mass = compare_tab.mass_figure(dataclasses.replace(views, classes=None, mass=None))
    assert not mass.data and "no class labels" in mass.layout.annotations[0].text
    evaluations = [{"model": "baseline", "embedder": "pixels", **{m: 1.0 for m in METRICS}, "is": None}]
    figure = compare_tab.metrics_figure(evaluations)
    assert [a.text for a in figure.layout.annotations if a.text == "not measured"] == ["not measured"]
    assert next(a for a in figure.layout.annotations if a.text == "not measured").xref == f"x{METRICS.index('is') + 1} domain"


def test_bad_selections_get_a_clear_message(data_root):
    with pytest.raises(gr.Error, match="Pick at least one run"):
        compare_tab.compare_runs(Session(), [], wb=Workbench(data_root))
    with pytest.raises(gr.Error, match="outside the data root"):
        compare_tab.compare_runs(Session(), ["../../etc"], wb=Workbench(data_root))


def test_runs_of_different_lengths_are_flagged_and_a_single_run_shows_its_value(trained_run, data_root):
    from core.cli import main

    assert main(["train", "digits", "--classes", "0,1", "--per-class", "40", "--preset", "quick", "--steps", "2",
                 "--batch-size", "16", "--run-dir", str(data_root / "runs" / "longer"), "--no-queue",
                 "--device", "cpu"]) == 0
    wb = Workbench(data_root)
    list(compare_tab.evaluate_runs(Session(), ["runs/base"], 50, wb=wb, progress=lambda *a, **k: None))
    grids, table, figure, note = compare_tab.compare_runs(Session(), ["runs/base", "runs/longer"], wb=wb)
    assert "different training steps" in note and "base 1/1" in note and "longer 2/2" in note
    row = next(line for line in table.splitlines() if line.startswith("| baseline"))
    assert "| 1/1 |" in row and "±" not in row  # one run: its value, not "± 0"
