"""Flow-matching runs as folders: the same files, checkpoints, SIGKILL-and-resume and evaluation as the GAN's."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from core.cli import main
from core.training import runs
from core.training.checkpoints import load_generator
from core.training.flow import FlowSampler
from tests.core.training.test_runs import assert_same, networks, wait_for
from tests.core.training.test_runs import in_runs_folder, one_thread  # noqa: F401  (autouse fixtures)

ROOT = Path(__file__).resolve().parents[3]
TINY = ["--model", "flow", "--preset", "quick", "--batch-size", "16", "--device", "cpu", "--log-every", "2",
        "--sample-every", "4", "--checkpoint-every", "2"]


def train_cli(run_id, *args, steps=4):
    return main(["train", "digits", *TINY, "--steps", str(steps), "--run-dir", run_id, *args])


def test_a_flow_run_writes_every_file_and_evaluates(data_root):
    assert train_cli("f1", "--scheme", "class-balanced", steps=4) == 0
    run_dir = data_root / "runs" / "f1"
    record = json.loads((run_dir / "config.json").read_text())
    assert record["train"]["model"] == "flow" and record["scheme"] == "class-balanced"
    assert record["weights"] == "class-balanced"
    metrics = runs.read_metrics(run_dir)
    assert [m["step"] for m in metrics] == [2, 4]
    assert all(np.isfinite(m[k]) for m in metrics for k in ("loss", "loss_var", "ms_per_step"))
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == ["step-0000004.png"]
    labels = np.load(run_dir / "weights.npy")
    assert labels.max() / labels.min() > 1.01  # digits' classes are not exactly equal in size
    sampler = load_generator(run_dir)
    assert isinstance(sampler, FlowSampler) and sampler.z_dim == 64
    images = sampler(torch.zeros(2, 64))
    assert images.shape == (2, 1, 8, 8) and 0 <= images.min() and images.max() <= 1
    assert main(["evaluate", "f1", "--n-samples", "64", "--kid-subsets", "2", "--kid-subset-size", "32"]) == 0
    assert json.loads((run_dir / "eval.json").read_text())["n_gen"] == 64
    # fixed noise: a second flow run's first grid is the same picture when its weights are the same
    assert train_cli("f2", "--scheme", "class-balanced", steps=4) == 0
    assert (run_dir / "samples/step-0000004.png").read_bytes() == (data_root / "runs/f2/samples/step-0000004.png").read_bytes()


def test_importance_weighting_needs_the_flow_model(data_root, capsys):
    assert main(["train", "digits", "--loss-weighting", "importance", "--steps", "2", "--run-dir", "g"]) == 2
    assert "--model flow only" in capsys.readouterr().err
    assert train_cli("fi", "--gamma", "0.8", "--loss-weighting", "importance", steps=2) == 0
    record = json.loads((data_root / "runs/fi/config.json").read_text())
    assert record["train"]["loss_weighting"] == "importance" and record["scheme"] == "diversity"


def test_sigkill_then_resume_equals_an_uninterrupted_flow_run(data_root):
    steps, every = 24, ["--checkpoint-every", "3", "--sample-every", "24", "--log-every", "3"]
    assert train_cli("straight", *every, steps=steps) == 0
    command = [sys.executable, "-m", "core", "train", "digits", *TINY, "--steps", str(steps),
               "--run-dir", str(data_root / "runs" / "killed"), *every]
    process = subprocess.Popen(command, cwd=ROOT, env=os.environ | {"DIVWEIGHTS_DATA_DIR": str(data_root)},
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_dir = data_root / "runs" / "killed"
    wait_for(lambda: len(runs.checkpoint_paths(run_dir)) >= 2 or process.poll() is not None, what="checkpoints")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert runs.read_status(run_dir)["step"] < steps, "killed too late to test a resume"
    assert main(["train", "--run-dir", "killed", "--resume"]) == 0
    assert runs.read_status(run_dir)["state"] == "finished"
    assert_same(networks(data_root / "runs/straight"), networks(run_dir))
    assert [m["step"] for m in runs.read_metrics(run_dir)] == list(range(3, steps + 1, 3))
