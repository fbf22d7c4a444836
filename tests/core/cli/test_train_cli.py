"""`python -m core train` and `evaluate` with the user's own run folders, anywhere on the machine."""

import json

import pytest

from core.cli import main
from core.training import runs
from core.workbench import Workbench

TINY = ["--preset", "quick", "--steps", "1", "--batch-size", "8", "--device", "cpu", "--no-queue"]


@pytest.fixture
def home(tmp_path, data_root, monkeypatch):
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def test_a_run_folder_anywhere_relative_to_the_current_directory(home, data_root, capsys):
    assert main(["train", "digits", "--classes", "0,1", "--per-class", "10", "--uniform", *TINY,
                 "--run-dir", "runs/digits-baseline"]) == 0
    run_dir = home / "runs" / "digits-baseline"
    assert runs.read_status(run_dir)["state"] == "finished"
    assert Workbench(data_root).list_runs() == []  # the studio lists only <data root>/runs/
    assert main(["train", "--run-dir", "runs/digits-baseline", "--steps", "2"]) == 0  # execute it further
    assert json.loads((run_dir / "config.json").read_text())["train"]["steps"] == 2
    assert runs.read_status(run_dir)["step"] == 2
    assert main(["evaluate", "runs/digits-baseline", "--n-samples", "20", "--kid-subsets", "2",
                 "--kid-subset-size", "10"]) == 0
    assert (run_dir / "eval.json").exists() and "digits-baseline\t" in capsys.readouterr().out


def test_a_users_own_images_train_from_anywhere(home, capsys):
    import numpy as np

    np.save(home / "mine.npy", np.random.default_rng(0).integers(0, 255, (12, 8, 8), np.uint8))
    assert main(["train", "mine.npy", "--gamma", "1", *TINY, "--run-dir", str(home / "out" / "r")]) == 0
    record = runs.read_config(home / "out" / "r")
    assert record["dataset"]["source"] == str(home / "mine.npy")  # absolute: the run rebuilds it from anywhere
    assert record["weights"] == "gamma=1 (pixels)"


def test_refusals_are_one_line_and_write_nothing(home, capsys):
    assert main(["train", "--run-dir", "nothing-here"]) == 2
    assert "holds no run" in capsys.readouterr().err and not (home / "nothing-here").exists()
    assert main(["train", "digits", *TINY, "--gamma", "2", "--run-dir", "r"]) == 2
    assert "--gamma must lie in [0, 1]" in capsys.readouterr().err and not (home / "r" / "config.json").exists()
