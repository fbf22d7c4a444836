"""The studio's handlers for the flow model and the other weighting schemes, called directly: the Train
tab starts flow and class-balanced runs, the Weights tab lists every scheme side by side."""

import gradio as gr
import numpy as np
import pytest

from core.diversity.schemes import class_balanced_weights
from core.training import runs
from core.workbench import Workbench
from divweights_ui import train_tab as t
from divweights_ui import weights_handlers as w


from tests.ui.test_train_tab import one_thread, session, wait_until_settled  # noqa: F401  (shared fixtures)


def test_train_tab_starts_flow_runs_of_the_baseline_and_a_scheme(session, data_root):
    wb = Workbench(data_root)
    assert t.preset_defaults("quick", "flow") != t.preset_defaults("quick")  # each model's own preset
    message, table = t.start_training(session, "quick", "cpu", 3, 8, True, [], "flow", ["class-balanced"], wb=wb)
    assert message.startswith("Started 2 run(s)")
    assert wait_until_settled(data_root) == ["finished", "finished"]
    table, figure, grids, _ = t.list_runs(None, wb=wb)
    assert {row[3] for row in table} == {"uniform", "class-balanced"} and {row[-1] for row in table} == {"flow"}
    assert len(figure.data) == 4 and all(len(trace.x) == 1 for trace in figure.data)  # loss and loss_var per run
    assert "Flow-matching loss" in figure.layout.annotations[0].text and len(grids) == 2
    balanced = next(row[0] for row in table if row[3] == "class-balanced")
    record = runs.read_config(data_root / "runs" / balanced)
    assert record["scheme"] == "class-balanced" and record["train"]["model"] == "flow"
    np.testing.assert_allclose(np.load(data_root / "runs" / balanced / "weights.npy"),
                               class_balanced_weights(session.dataset.labels))


def test_train_tab_refuses_what_it_cannot_train(session, data_root):
    wb = Workbench(data_root)
    with pytest.raises(gr.Error, match="Unknown model"):
        t.start_training(session, "quick", "cpu", 3, 8, True, [], "vae", wb=wb)
    with pytest.raises(gr.Error, match="Choose the baseline"):
        t.start_training(session, "quick", "cpu", 3, 8, False, [], "flow", [], wb=wb)
    session.ready.dataset.labels = None
    with pytest.raises(gr.Error, match="need class labels"):
        t.start_training(session, "quick", "cpu", 3, 8, False, [], "flow", ["class-balanced"], wb=wb)
    assert runs.list_runs(data_root) == []  # nothing was written


def test_weights_tab_shows_every_scheme_side_by_side(session, data_root):
    text = w.compare_schemes(session, 0.8, 20, 0.1, wb=Workbench(data_root))
    lines = text.splitlines()
    assert lines[0].startswith("| weighting | VS | entropy (nats) | ESS | largest weight | mass per class |")
    rows = [line for line in lines[2:] if line.startswith("| ")]
    assert [r.split(" | ")[0][2:] for r in rows] == ["uniform (baseline)", "diversity weights (γ = 0.8)",
                                                     "class-balanced", "inverse density (kNN)", "ridge leverage"]
    assert "50%" in rows[2]  # class-balanced: half the mass on each of the two classes


def test_weights_tab_exports_a_scheme(session, data_root):
    from core.diversity.export import load_exported_weights

    csv_path, npy_path, json_path = w.export_scheme(session, "class-balanced", wb=Workbench(data_root))
    np.testing.assert_allclose(load_exported_weights(npy_path), class_balanced_weights(session.dataset.labels))
    assert csv_path.endswith(".csv") and json_path.endswith(".json")
    with pytest.raises(gr.Error, match="Export tab"):
        w.export_scheme(session, "diversity", wb=Workbench(data_root))
