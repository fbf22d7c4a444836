import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from core import __version__
from core.training import runs
from core.cli import main
from core.data.datasets import DatasetSpec
from core.training.checkpoints import load_generator, read_checkpoint
from core.training.config import TrainConfig
from core.workbench import Workbench

ROOT = Path(__file__).resolve().parents[3]
TINY = ["--preset", "quick", "--batch-size", "16", "--device", "cpu", "--log-every", "2",
        "--sample-every", "2", "--checkpoint-every", "2"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """2 shared cores: OpenMP threads fighting other processes are 50x slower than one thread;
    training subprocesses inherit OMP_NUM_THREADS=1 too (and the same numerics)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def in_runs_folder(data_root, monkeypatch):
    """The CLI takes the user's paths: these tests run it from <data root>/runs/, where the studio lists runs."""
    (data_root / "runs").mkdir()
    monkeypatch.chdir(data_root / "runs")


def train_cli(run_id, *args, steps=4):
    return main(["train", "digits", *TINY, "--steps", str(steps), "--run-dir", run_id, *args])


def networks(run_dir: Path) -> dict:
    tensors, _ = read_checkpoint(runs.checkpoint_paths(run_dir)[0].read_bytes())
    return {k: v for k, v in tensors.items() if not k.startswith(("rng.",))}


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def spawn_cli(data_root: Path, run_id: str, steps: int, *extra) -> subprocess.Popen:
    command = [sys.executable, "-m", "core", "train", "digits", *TINY, "--steps", str(steps),
               "--run-dir", str(data_root / "runs" / run_id), *extra]
    env = os.environ | {"DIVWEIGHTS_DATA_DIR": str(data_root)}
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_short_run_writes_every_file(data_root):
    assert train_cli("r1", steps=6) == 0
    run_dir = data_root / "runs" / "r1"
    record = json.loads((run_dir / "config.json").read_text())
    expected = TrainConfig.preset("quick", batch_size=16, steps=6, device="cpu", log_every=2, sample_every=2,
                                  checkpoint_every=2)
    assert runs.load_config(record) == expected and record["train"] == asdict(expected)
    assert record["dataset"]["source"] == "digits" and record["version"] == __version__
    assert record["weights"] == "uniform" and len(record["dataset_fingerprint"]) == 16
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "finished" and status["step"] == 6 and status["pid"] == os.getpid()
    assert time.time() - status["heartbeat"] < 60
    metrics = runs.read_metrics(run_dir)
    assert [m["step"] for m in metrics] == [2, 4, 6]
    assert all(np.isfinite(m[k]) for m in metrics for k in ("loss_d", "loss_g", "wdist", "gp", "ms_per_step"))
    assert [p.name for p in runs.checkpoint_paths(run_dir)] == ["ckpt-0000006.safetensors", "ckpt-0000004.safetensors"]
    _, meta = read_checkpoint(runs.checkpoint_paths(run_dir)[0].read_bytes())
    assert meta["step"] == 6 and meta["train"] == record["train"] and meta["version"] == __version__
    assert meta["dataset_fingerprint"] == record["dataset_fingerprint"]
    grids = sorted(p.name for p in (run_dir / "samples").glob("*.png"))
    assert grids == ["step-0000002.png", "step-0000004.png", "step-0000006.png"]
    p = np.load(run_dir / "weights.npy")
    np.testing.assert_allclose(p, np.full(len(p), 1 / len(p)))
    assert load_generator(run_dir)(torch.zeros(2, 64)).shape == (2, 1, 8, 8)
    # the same fixed latents in every run: a second run's first grid is the same picture
    assert train_cli("r2", steps=2) == 0
    assert (run_dir / "samples/step-0000002.png").read_bytes() == (data_root / "runs/r2/samples/step-0000002.png").read_bytes()


def test_existing_run_never_overwritten_and_bad_weights_refused(data_root, capsys):
    assert train_cli("r1", steps=2) == 0
    before = (data_root / "runs/r1/config.json").read_bytes()
    assert train_cli("r1", steps=2) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (data_root / "runs/r1/config.json").read_bytes() == before
    np.save(data_root / "p.npy", np.ones(10))
    assert train_cli("r3", "--weights", str(data_root / "p.npy")) == 2
    assert "weights have shape" in capsys.readouterr().err
    assert not (data_root / "runs/r3/config.json").exists()


def test_sigkill_then_resume_equals_an_uninterrupted_run(data_root):
    steps, every = 30, ["--checkpoint-every", "3", "--sample-every", "30", "--log-every", "3"]
    assert train_cli("straight", *every, steps=steps) == 0
    process = spawn_cli(data_root, "killed", steps, *every)
    run_dir = data_root / "runs" / "killed"
    wait_for(lambda: len(runs.checkpoint_paths(run_dir)) >= 2 or process.poll() is not None, what="checkpoints")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    status = runs.read_status(run_dir)
    assert status["state"] == "running" and status["step"] < steps, "killed too late to test a resume"
    # a restarted studio: the dead run shows as interrupted
    assert runs.refresh_status(run_dir, stale_after_s=0)["state"] == "interrupted"
    assert main(["train", "--run-dir", "killed", "--resume"]) == 0
    assert runs.read_status(run_dir)["state"] == "finished"
    assert_same(networks(data_root / "runs/straight"), networks(run_dir))
    assert [m["step"] for m in runs.read_metrics(run_dir)] == list(range(3, steps + 1, 3))


def test_corrupted_last_checkpoint_falls_back_to_the_previous(data_root):
    assert train_cli("straight", steps=6) == 0
    assert train_cli("r", steps=4) == 0
    run_dir = data_root / "runs" / "r"
    newest = runs.checkpoint_paths(run_dir)[0]
    data = bytearray(newest.read_bytes())
    data[-3] ^= 0x55
    newest.write_bytes(bytes(data))
    assert main(["train", "--run-dir", "r", "--resume", "--steps", "6"]) == 0
    status = runs.read_status(run_dir)
    assert status["skipped_checkpoints"] == ["ckpt-0000004.safetensors: checksum mismatch (corrupted data)"]
    assert status["state"] == "finished" and status["resumed_from"] == 2
    assert_same(networks(data_root / "runs/straight"), networks(run_dir))


class Payload:
    """Unpickling this creates the marker file: proof the payload ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickle_checkpoint_is_refused_and_never_runs(data_root, capsys):
    marker = data_root / "pwned"
    assert train_cli("r", steps=4) == 0
    run_dir = data_root / "runs" / "r"
    torch.save({"generator.weight": Payload(marker)}, run_dir / "checkpoints/ckpt-0000009.safetensors")
    assert main(["train", "--run-dir", "r", "--resume", "--steps", "6"]) == 0  # falls back to step 4
    assert "pickle" in runs.read_status(run_dir)["skipped_checkpoints"][0]
    assert runs.read_status(run_dir)["state"] == "finished" and not marker.exists()
    # only malicious checkpoints left: refused, nothing runs
    for path in runs.checkpoint_paths(run_dir):
        path.write_bytes(__import__("pickle").dumps(Payload(marker)))
    assert main(["train", "--run-dir", "r", "--resume", "--steps", "8"]) == 2
    assert "no usable checkpoint" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no usable checkpoint"):
        load_generator(run_dir)
    assert not marker.exists()


def test_resume_refuses_changed_inputs(data_root, capsys):
    assert train_cli("r", steps=2) == 0
    assert main(["train", "digits", *TINY, "--steps", "4", "--run-dir", "r", "--resume", "--gamma", "0.5"]) == 2
    assert "weights_fingerprint" in capsys.readouterr().err
    assert main(["train", "digits", *TINY, "--batch-size", "8", "--steps", "4", "--run-dir", "r", "--resume"]) == 2
    assert "batch_size 16 -> 8" in capsys.readouterr().err
    saved = runs.read_config(data_root / "runs/r")
    with pytest.raises(ValueError, match="dataset_fingerprint"):
        runs.check_resume(saved, saved | {"dataset_fingerprint": "0" * 16})
    assert runs.read_status(data_root / "runs/r")["step"] == 2  # nothing trained, nothing lost


def test_two_simultaneous_starts_one_runs_one_waits(data_root):
    bench = Workbench(data_root)
    config = TrainConfig.preset("quick", steps=100000, batch_size=16, device="cpu", log_every=2, sample_every=2,
                                checkpoint_every=2)
    folders = [bench.create_run(DatasetSpec("digits"), None, config, run_dir=data_root / "runs" / name) for name in "ab"]
    first, second = (runs.launch_run(folder, data_root) for folder in folders)
    states = lambda: sorted(r["state"] for r in runs.list_runs(data_root))  # noqa: E731
    try:
        wait_for(lambda: states() == ["queued", "running"] and all(
            runs.read_status(data_root / "runs" / n).get("pid") for n in "ab"), what="one running, one queued")
        running = next(r for r in runs.list_runs(data_root) if r["state"] == "running")["run_id"]
        queued = "b" if running == "a" else "a"
        time.sleep(1.0)
        assert runs.read_status(data_root / "runs" / queued)["state"] == "queued"  # still waiting
        with pytest.raises(ValueError, match="stop it before deleting"):
            runs.delete_run(data_root / "runs" / running)
        assert main(["train", "--run-dir", queued, "--resume"]) == 2  # one process per run folder
        assert main(["train", "--run-dir", queued, "--steps", "0"]) == 2  # bad input: the live run is untouched
        assert runs.read_status(data_root / "runs" / queued)["state"] == "queued"
        runs.request_stop(data_root / "runs" / running)
        wait_for(lambda: runs.read_status(data_root / "runs" / queued)["state"] == "running", what="the queued run to start")
        runs.request_stop(data_root / "runs" / queued)
        for process in (first, second):
            assert process.wait(timeout=60) == 0
    finally:
        for process in (first, second):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    for name in "ab":
        status = runs.read_status(data_root / "runs" / name)
        assert status["state"] == "interrupted" and status["message"].startswith("stopped at step")
        assert runs.checkpoint_paths(data_root / "runs" / name)[0].name == f"ckpt-{status['step']:07d}.safetensors"


def test_refresh_marks_only_dead_and_stale_runs(data_root):
    dead = subprocess.Popen(["true"])
    dead.wait()
    run_dir = data_root / "runs" / "r"
    runs.write_status(run_dir, "running", step=7, **runs.process_owner(os.getpid()))
    assert runs.refresh_status(run_dir, stale_after_s=0)["state"] == "running"  # this process: alive
    runs.write_status(run_dir, "running", pid=dead.pid, pid_start=None, step=7)
    assert runs.refresh_status(run_dir)["state"] == "interrupted"  # gone: at once, heartbeat fresh or not
    runs.write_status(run_dir, "running", pid=os.getpid(), pid_start=1, step=7)  # a reused pid is not the run's
    assert runs.refresh_status(run_dir)["state"] == "interrupted"
    runs.write_status(run_dir, "running", pid=12345, host="another-machine", step=7)
    assert runs.refresh_status(run_dir)["state"] == "running"  # another host: trust a fresh heartbeat
    assert runs.refresh_status(run_dir, stale_after_s=0)["state"] == "interrupted"
    runs.write_status(run_dir, "queued", pid=None, host=None, message="starting")
    assert runs.refresh_status(run_dir)["state"] == "queued"  # still launching
    runs.write_status(run_dir, "finished", pid=dead.pid)
    assert runs.refresh_status(run_dir, stale_after_s=0)["state"] == "finished"
    assert runs.list_runs(data_root)[0]["run_id"] == "r"
    runs.delete_run(run_dir)
    assert runs.list_runs(data_root) == []


def test_a_sigkilled_cli_run_reads_interrupted_at_the_next_refresh(data_root):
    process = spawn_cli(data_root, "k", 100000)
    run_dir = data_root / "runs" / "k"
    try:
        wait_for(lambda: runs.read_status(run_dir).get("state") == "running", what="the run to start")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    status = runs.list_runs(data_root)[0]
    assert status["state"] == "interrupted" and "process ended without a final status" in status["message"]


def test_a_launched_run_reads_queued_until_it_runs_and_leaves_no_zombie(data_root):
    bench = Workbench(data_root)
    config = TrainConfig.preset("quick", steps=2, batch_size=16, device="cpu", log_every=1, sample_every=1,
                                checkpoint_every=1)
    run_dir = bench.create_run(DatasetSpec("digits"), None, config, run_dir=data_root / "runs" / "z")
    process = runs.launch_run(run_dir, data_root)
    status = runs.read_status(run_dir)
    assert status["pid"] == process.pid and status["pid_start"] == runs.process_start(process.pid)
    seen = set()

    def finished() -> bool:
        state = runs.list_runs(data_root)[0]["state"]
        seen.add(state)
        return state == "finished"
    wait_for(finished, timeout=120, what="the run to finish")
    assert seen <= {"queued", "running", "finished"}  # never "interrupted" while it starts up
    wait_for(lambda: process.returncode is not None, what="the child to be reaped")
    assert not Path(f"/proc/{process.pid}").exists() or runs.process_start(process.pid) != status["pid_start"]


def test_a_resumed_run_waits_at_its_checkpoint_step(data_root):
    assert train_cli("r", steps=4) == 0
    run_dir = data_root / "runs" / "r"
    with runs.job_lock(data_root):  # another job holds the queue: the resumed run waits
        process = subprocess.Popen([sys.executable, "-m", "core", "train", "--run-dir", str(run_dir), "--steps", "6"],
                                   cwd=ROOT, env=os.environ | {"DIVWEIGHTS_DATA_DIR": str(data_root)},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: runs.read_status(run_dir).get("pid") == process.pid, what="the resumed run to queue")
            status = runs.read_status(run_dir)
            assert status["state"] == "queued" and status["step"] == 4 and status["steps"] == 6
        finally:
            process.terminate()
            process.wait()


def test_a_run_stopped_before_its_first_step_still_checkpoints(data_root):
    run_dir = data_root / "runs" / "s"
    assert train_cli("s", steps=4) == 0
    for path in runs.checkpoint_paths(run_dir):
        path.unlink()
    (run_dir / "metrics.jsonl").unlink()
    runs.write_status(run_dir, "interrupted", step=0)
    runs.request_stop(run_dir)  # asked to stop before step 1 (the stop request of a queued run)
    from core.training.execution import execute
    assert execute(run_dir, data_root, queue=False) == "interrupted"
    assert [p.name for p in runs.checkpoint_paths(run_dir)] == ["ckpt-0000000.safetensors"]


def test_out_of_memory_marks_the_run_failed(data_root, monkeypatch):
    def out_of_memory(self):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr("core.training.trainer.Trainer.train_step", out_of_memory)
    assert train_cli("r", steps=2) == 1
    status = runs.read_status(data_root / "runs" / "r")
    assert status["state"] == "failed" and "CUDA out of memory" in status["message"]


def test_resume_detects_an_edited_config_and_refuses_ignored_flags(data_root, capsys):
    import json

    run_dir = data_root / "runs" / "r"
    assert train_cli("r", steps=4) == 0
    record = runs.read_config(run_dir)
    assert record["device_resolved"] == "cpu" and record["environment"]["numpy"] == np.__version__
    assert torch.__version__.startswith(record["environment"]["torch"])
    assert main(["train", "--run-dir", "r", "--steps", "6", "--batch-size", "8", "--train-seed", "3"]) == 2
    assert "--batch-size, --train-seed cannot change an existing run" in capsys.readouterr().err
    assert runs.read_config(run_dir)["train"]["steps"] == 4  # nothing was written
    assert main(["train", "--run-dir", "r", "--steps", "6"]) == 0
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert [(e["event"], e["step"]) for e in events] == [("started", 0), ("resumed", 4)]
    assert events[1]["device"] == "cpu" and events[1]["environment"]["python"]
    edited = runs.read_config(run_dir)
    edited["train"]["batch_size"] = 8  # edited by hand after the checkpoints were written
    (run_dir / "config.json").write_text(json.dumps(edited))
    assert main(["train", "--run-dir", "r", "--steps", "8"]) == 2
    assert "config.json was edited after ckpt-" in capsys.readouterr().err
    assert runs.checkpoint_paths(run_dir)[0].name == "ckpt-0000006.safetensors"  # the checkpoints are kept


def test_a_running_run_says_how_long_it_still_needs(data_root):
    run_dir = data_root / "runs" / "r"
    runs.write_status(run_dir, "running", step=40, **runs.process_owner())
    (run_dir / "config.json").write_text('{"train": {"steps": 100}}')
    runs.append_metrics(run_dir, {"step": 40, "ms_per_step": 500.0})
    assert runs.list_runs(data_root)[0]["eta_s"] == pytest.approx(30.0)  # 60 steps x 0.5 s
    runs.write_status(run_dir, "finished", step=100)
    assert runs.list_runs(data_root)[0]["eta_s"] is None


def test_a_studio_run_on_an_upload_starts_from_any_working_directory(data_root):
    """The studio records an upload relative to the data root; the training process (started in the
    project folder, or anywhere) finds it there."""
    import io
    import zipfile

    from PIL import Image

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for i in range(12):
            image = io.BytesIO()
            Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(image, "PNG")
            zipped.writestr(f"shapes/{'ab'[i % 2]}/{i}.png", image.getvalue())
    upload = data_root / "uploads" / "abc" / "shapes.zip"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(archive.getvalue())
    bench = Workbench(data_root)  # the studio: paths confined to the data root
    spec = DatasetSpec("uploads/abc/shapes.zip", subfolders_as_classes=True)
    config = TrainConfig.preset("quick", steps=2, batch_size=4, device="cpu", log_every=1, sample_every=1,
                                checkpoint_every=1)
    run_dir = bench.create_run(spec, None, config)
    assert runs.read_config(run_dir)["dataset"]["source"] == "uploads/abc/shapes.zip"
    assert Path.cwd() != data_root
    assert bench.execute_run(run_dir, queue=False) == "finished"
    assert runs.latest_sample(run_dir) is not None
