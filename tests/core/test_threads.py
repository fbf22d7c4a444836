"""Background training makes way for the studio's weights; it takes every core but one otherwise."""

import os
import time

import pytest

from core.data.datasets import DatasetSpec
from core.threads import MAKE_WAY_PREFIX, making_way, training_threads, way_asked
from core.training import runs
from core.training.config import TrainConfig
from core.workbench import Workbench


def test_a_marker_of_a_live_process_asks_for_way(tmp_path):
    assert not way_asked(tmp_path)
    with making_way(tmp_path):
        assert way_asked(tmp_path)
    assert not way_asked(tmp_path) and not list(tmp_path.iterdir())
    (tmp_path / f"{MAKE_WAY_PREFIX}999999999").write_text("")  # a dead process's marker is ignored
    assert not way_asked(tmp_path)
    assert training_threads() == max(1, len(os.sched_getaffinity(0)) - 1)


def wait_for(predicate, what, timeout=90.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_a_background_run_pauses_while_weights_are_computed(data_root, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    wb = Workbench(data_root)
    config = TrainConfig.preset("quick", steps=100_000, batch_size=8, device="cpu", log_every=1,
                                checkpoint_every=100_000, sample_every=100_000)
    run_dir = wb.create_run(DatasetSpec("digits", (0, 1), 20), None, config, name="background")
    wb.start_run(run_dir)
    logged = lambda: len(runs.read_metrics(run_dir))  # noqa: E731  (one line per step)
    try:
        wait_for(lambda: logged() >= 3, "the run to train")
        with making_way(wb.runs_root()):
            time.sleep(1.0)  # the step under way finishes
            paused_at = logged()
            time.sleep(3.0)
            assert logged() <= paused_at + 1  # paused between two steps
            assert runs.refresh_status(run_dir)["state"] == "running"  # the heartbeat goes on: not stale
        wait_for(lambda: logged() > paused_at + 2, "the run to go on")
    finally:
        runs.request_stop(run_dir)
        wait_for(lambda: runs.refresh_status(run_dir).get("state") not in runs.ACTIVE_STATES, "the run to stop")
