"""Train tab handlers called directly: they launch real `python -m core train` processes."""

import time

import gradio as gr
import numpy as np
import pytest

from core.training import runs
from core.workbench import Workbench
from divweights_ui import handlers as h
from divweights_ui import train_tab as t
from divweights_ui.session import Session


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # training subprocesses on 2 shared cores


@pytest.fixture
def session(data_root):
    """digits 0/1, 20 per class, pixel features, one set of diversity weights."""
    session = h.initial_session(Workbench(data_root), h.StartupChoice("digits", (0, 1), 20, steps=8))
    assert session.weights, "the startup session computes one set of weights"
    return session


def wait_until_settled(data_root, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [r["state"] for r in runs.list_runs(data_root)]
        if states and not set(states) & set(runs.ACTIVE_STATES):
            return states
        time.sleep(0.2)
    raise AssertionError(f"runs still active: {runs.list_runs(data_root)}")


def test_start_list_resume_delete(session, data_root):
    key = next(iter(session.weights))
    assert t.weights_choices(session) == [(f"DivW γ={session.weights[key].config.gamma:g} ({key})", key)]
    message, table = t.start_training(session, "quick", "cpu", 3, 8, True, [key], wb=Workbench(data_root))
    assert message.startswith("Started 2 run(s)") and len(table) == 2
    assert wait_until_settled(data_root) == ["finished", "finished"]

    table, figure, grids, picker = t.list_runs(None, wb=Workbench(data_root))
    by_weights = {row[3]: row for row in table}
    assert set(by_weights) == {"uniform", f"gamma={session.weights[key].config.gamma:g} (pixels)"}
    assert all(row[2] == "3/3" for row in table)
    assert len(figure.data) == 4 and all(len(trace.x) > 0 for trace in figure.data)  # 2 runs x 2 panels
    assert len(grids) == 2 and grids[0][0].ndim == 3
    assert picker["choices"] == [row[0] for row in table] and picker["value"] == table[0][0]
    divw = next(row[0] for row in table if row[3] != "uniform")
    np.testing.assert_allclose(np.load(data_root / "runs" / divw / "weights.npy"), session.weights[key].p)
    assert runs.read_config(data_root / "runs" / divw)["dataset"] == {"source": "digits", "classes": [0, 1],
                                                                      "per_class": 20, "seed": 0,
                                                                      "subfolders_as_classes": False}

    *shown, picker_again, seen = t.poll_runs(table[0][0], None, wb=Workbench(data_root))  # first tick draws
    assert shown[0] == table and len(shown[1].data) == 4 and len(shown[2]) == 2
    assert t.poll_runs(table[0][0], seen, wb=Workbench(data_root))[:4] == (gr.skip(),) * 4  # nothing changed
    runs.append_metrics(data_root / "runs" / divw, {"step": 4, "time": time.time(), "wdist": 0.1, "loss_g": 0.2})
    assert t.poll_runs(table[0][0], seen, wb=Workbench(data_root))[4] != seen  # new metrics: drawn again

    with pytest.raises(gr.Error, match="nothing to stop"):
        t.stop_run(divw, wb=Workbench(data_root))
    with pytest.raises(gr.Error, match="finished"):
        t.resume_run(divw, wb=Workbench(data_root))
    runs.write_status(data_root / "runs" / divw, "interrupted", message="stopped at step 3")
    assert t.resume_run(divw, wb=Workbench(data_root)).startswith("Resuming")
    assert wait_until_settled(data_root) == ["finished", "finished"]
    assert runs.read_status(data_root / "runs" / divw)["resumed_from"] == 3

    with pytest.raises(gr.Error, match="confirmation"):
        t.delete_run(divw, False, wb=Workbench(data_root))
    assert (data_root / "runs" / divw).exists()
    assert t.delete_run(divw, True, wb=Workbench(data_root)) == f"Deleted {divw}."
    assert [r["run_id"] for r in runs.list_runs(data_root)] == [r[0] for r in table if r[0] != divw]


def test_bad_requests_change_nothing(session, data_root):
    with pytest.raises(gr.Error, match="Load a dataset"):
        t.start_training(Session(), "quick", "cpu", 3, 8, True, [], wb=Workbench(data_root))
    with pytest.raises(gr.Error, match="Choose the baseline"):
        t.start_training(session, "quick", "cpu", 3, 8, False, [], wb=Workbench(data_root))
    with pytest.raises(gr.Error, match="no longer in this session"):
        t.start_training(session, "quick", "cpu", 3, 8, False, ["gone"], wb=Workbench(data_root))
    with pytest.raises(gr.Error, match="at least 1"):
        t.start_training(session, "quick", "cpu", 0, 8, True, [], wb=Workbench(data_root))
    for bad in ("../..", "", "nope"):
        with pytest.raises(gr.Error):
            t.stop_run(bad, wb=Workbench(data_root))
    assert runs.list_runs(data_root) == []
    table, figure, grids, picker = t.list_runs(None, wb=Workbench(data_root))
    assert (table, grids, picker["value"]) == ([], [], None)
    assert "No training runs yet" in figure.layout.annotations[0].text and not figure.data
    assert t.preset_defaults("paper") == (6000, 6000)


def test_weights_list_follows_the_session_and_keeps_ticks(session):
    key = next(iter(session.weights))
    update, known = t.sync_weights(session, [], [])
    assert update["choices"] == t.weights_choices(session) and known == [key]
    assert t.sync_weights(session, known, [key])[0] == gr.skip()  # unchanged: leave the ticks alone
    session.weights["other"] = session.weights[key]
    update, known = t.sync_weights(session, known, [key])
    assert known == [key, "other"] and update["value"] == [key]


def test_tab_builds(data_root):
    with gr.Blocks() as demo:
        with gr.Tab("Train"):
            t.build_train_tab(gr.State(Session()), Workbench(data_root))
    names = {dep.get("api_name") for dep in demo.config["dependencies"]}
    assert {"start_training", "list_runs", "stop_run", "resume_run", "delete_run"} <= names


def test_a_run_without_losses_shows_its_whole_message_not_empty_axes(data_root):
    run_dir = data_root / "runs" / "r"
    message = "could not start: " + "a long explanation of what went wrong " * 6 + "THE END"
    runs.write_status(run_dir, "failed", message=message)
    (run_dir / "config.json").write_text('{"train": {"steps": 10}}')
    _, figure, grids, _ = t.list_runs(None, wb=Workbench(data_root))
    text = figure.layout.annotations[0].text.replace("<br>", " ")
    assert not figure.data and grids == []
    assert "No losses logged yet." in text and "r: failed" in text and "THE END" in text


def test_a_full_disk_at_start_is_a_sentence_and_leaves_no_run_folder(session, data_root, monkeypatch):
    """ENOSPC while a run folder is written: a gr.Error with the sentence (not gradio's blank error),
    and the half-made folder is removed (it used to list as an 'unknown' run)."""
    import errno

    from core.data import storage

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "atomic_write_bytes", full)
    with pytest.raises(gr.Error, match="is full: free some space"):
        t.start_training(session, "quick", "cpu", 3, 8, True, [], wb=Workbench(data_root))
    assert runs.list_runs(data_root) == []
    assert not (data_root / "runs").exists() or list((data_root / "runs").iterdir()) == []
