"""Training runs as folders (the studio's under `<data_root>/runs/<run_id>/`, the CLI's anywhere);
the folder is a run's only interface. Reading runs imports no torch.

  config.json      asdict(TrainConfig), dataset spec + fingerprint, weights fingerprint, version
  weights.npy      p (N,), the sampling probabilities of the real batches (uniform for a baseline)
  status.json      state (created/queued/running/finished/failed/interrupted), step, heartbeat, pid, message
  metrics.jsonl    mean losses every `log_every` generator steps
  checkpoints/     ckpt-<step>.safetensors, the last KEEP_CHECKPOINTS kept
  samples/         step-<step>.png grids from one fixed latent batch (comparable across runs)
  events.jsonl     one line per start and resume: step, device, process, versions
  stop.request     written by `request_stop`; the trainer checkpoints and exits
  log.txt          stdout/stderr of the training process

A run folder is written once by the workbench (`create_run`), then executed by
`python -m core train --run-dir DIR` in its own session (core.training.execution), so closing the
browser or the studio never stops it. One job runs at a time per data root (an flock), others
wait as "queued". Every file is written atomically (core.data.storage) except metrics.jsonl, which
is appended to and trimmed back to the checkpoint on resume.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from .. import __version__
from ..data.storage import (atomic_save_npy, atomic_write_bytes, atomic_write_json, checkout_root,
                               fingerprint_arrays)
from ..diversity.vendi import check_probabilities
from ..threads import TRAIN_THREADS_ENV, training_threads
from .config import TrainConfig

STATES = ("created", "queued", "running", "finished", "failed", "interrupted")
ACTIVE_STATES = ("queued", "running")
KEEP_CHECKPOINTS = 2
STALE_AFTER_S = 15.0  # a run of another machine (shared disk), or one still launching, is interrupted
# once its heartbeat is this old; a run of this machine whose process is gone is interrupted at once
RESUME_FREE_FIELDS = ("steps", "device")  # may change on resume; any other field refuses
PACKAGE = __name__.split(".")[0]  # "core" in a checkout, "divweights" installed: what `python -m` runs


def runs_root(data_root: str | os.PathLike) -> Path:
    return Path(data_root) / "runs"


# --- config / status / metrics -----------------------------------------------------------------

def run_record(config: TrainConfig, dataset_spec: dict, dataset_fingerprint: str, p: np.ndarray,
               weights_label: str, preset: str | None = None, scheme: str | None = None) -> dict:
    """The content of config.json: everything that defines the run, plus the package version.

    scheme: the weighting scheme of p (core.diversity.schemes.SCHEMES, or "custom" for a file); by
    default read from the label ("uniform", "gamma=..." = diversity)."""
    return {
        "train": asdict(config),
        "scheme": scheme or scheme_of_label(weights_label),
        "preset": preset,
        "dataset": dataset_spec,
        "dataset_fingerprint": dataset_fingerprint,
        "weights": weights_label,  # "uniform" (baseline), "gamma=0.8 (pixels)", or a file name
        "weights_fingerprint": weights_fingerprint(p),
        "version": __version__,
        "environment": environment(),
        "created": time.time(),
    }


def scheme_of_label(label: str) -> str:
    """The scheme a weights label names: older runs carry only the label."""
    label = label or ""
    if label == "uniform":
        return "uniform"
    if label.startswith("gamma="):
        return "diversity"
    for scheme in ("class-balanced", "inverse-density", "leverage"):
        if label.startswith(scheme):
            return scheme
    return "custom"


def run_scheme(record: dict) -> str:
    """The scheme of a run's config.json record (older runs: from their weights label)."""
    return record.get("scheme") or scheme_of_label(record.get("weights", ""))


def environment() -> dict:
    """Versions a run's numbers depend on (read without importing torch)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "numpy": np.__version__, "torch": installed("torch"),
            "divweights": __version__}


def append_event(run_dir: Path, event: str, **fields_) -> None:
    """One line in events.jsonl: the run's history of starts and resumes (never rewritten)."""
    append_jsonl(Path(run_dir) / "events.jsonl", {"event": event, "time": time.time(), **fields_})


def weights_fingerprint(p: np.ndarray) -> str:
    return fingerprint_arrays(np.asarray(p, dtype=np.float64))


def create_run(run_dir: Path, record: dict, p: np.ndarray) -> None:
    """Write weights.npy and config.json of a new run; refuses to overwrite an existing run."""
    if (run_dir / "config.json").exists():
        raise ValueError(f"{run_dir} already holds a run; pass --resume or choose another --run-dir")
    atomic_save_npy(run_dir / "weights.npy", np.asarray(p, dtype=np.float64))
    atomic_write_json(run_dir / "config.json", record)


def read_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} has no config.json: not a training run")
    return json.loads(path.read_text())


def load_config(record: dict) -> TrainConfig:
    """TrainConfig(**saved), ignoring fields a newer/older version does not know."""
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in record["train"].items() if k in known})


def check_resume(saved: dict, new: dict) -> None:
    """Refuse to resume when the dataset, the weights or the training config changed."""
    problems = []
    for key in ("dataset_fingerprint", "weights_fingerprint"):
        if saved.get(key) != new.get(key):
            problems.append(f"{key} {saved.get(key)} -> {new.get(key)}")
    saved_train = asdict(load_config(saved))  # fields an older run lacks (e.g. model) take their defaults
    for name, value in new["train"].items():
        if name not in RESUME_FREE_FIELDS and saved_train.get(name) != value:
            problems.append(f"{name} {saved_train.get(name)!r} -> {value!r}")
    if problems:
        raise ValueError("cannot resume, the run's inputs changed: " + "; ".join(problems))


def read_status(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / "status.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def write_status(run_dir: Path, state: str, **fields_) -> dict:
    """Merge `fields_` into status.json with a fresh heartbeat."""
    if state not in STATES:
        raise ValueError(f"unknown run state {state!r}")
    status = read_status(run_dir) | fields_ | {"state": state, "heartbeat": time.time()}
    atomic_write_json(Path(run_dir) / "status.json", status)
    return status


def append_metrics(run_dir: Path, record: dict) -> None:
    append_jsonl(Path(run_dir) / "metrics.jsonl", record)


def append_jsonl(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_metrics(run_dir: Path) -> list[dict]:
    """Records of metrics.jsonl; a line cut short by a killed process is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            records.append(json.loads(line))
    return records


def trim_metrics(run_dir: Path, last_step: int) -> None:
    """Drop records after `last_step` (written after the checkpoint a resume starts from)."""
    kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= last_step]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    atomic_write_bytes(Path(run_dir) / "metrics.jsonl", text.encode("utf-8"))


# --- checkpoints and samples -------------------------------------------------------------------

def checkpoint_paths(run_dir: Path) -> list[Path]:
    """Checkpoint files, newest (highest step) first."""
    return sorted((Path(run_dir) / "checkpoints").glob("ckpt-*.safetensors"), reverse=True)


def checkpoint_step(path: Path) -> int:
    """The generator step of a checkpoint file (ckpt-<step>.safetensors)."""
    return int(Path(path).stem.split("-")[1])


def latest_checkpoint_step(run_dir: Path) -> int | None:
    paths = checkpoint_paths(run_dir)
    return checkpoint_step(paths[0]) if paths else None


def latest_sample(run_dir: Path) -> Path | None:
    grids = sorted((Path(run_dir) / "samples").glob("step-*.png"))
    return grids[-1] if grids else None


# --- stop requests, the job lock, processes -----------------------------------------------------

def request_stop(run_dir: Path) -> None:
    atomic_write_bytes(Path(run_dir) / "stop.request", b"stop\n")


def stop_requested(run_dir: Path) -> bool:
    return (Path(run_dir) / "stop.request").exists()


@contextlib.contextmanager
def job_lock(data_root: Path, on_wait=None, should_stop=None, poll_s: float = 1.0):
    """Hold the data root's job lock (fcntl.flock); yields True, or False if `should_stop()`
    turned true while waiting. `on_wait()` is called while another job holds it."""
    path = runs_root(data_root) / ".jobs.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if should_stop is not None and should_stop():
                    yield False
                    return
                if on_wait is not None:
                    on_wait()
                time.sleep(poll_s)
        yield True
    finally:
        os.close(fd)  # closing the descriptor releases the lock (also when the process dies)


def launch_run(run_dir: Path, data_root: Path) -> subprocess.Popen:
    """Start `python -m core train --run-dir RUN_DIR` (which executes the folder) in its own session;
    returns at once. The child's process is recorded in status.json before this returns, so the run
    reads as queued (not as a dead process) while the child is still importing, and a thread reaps the
    child when it ends (no zombies under the studio)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "stop.request").unlink(missing_ok=True)
    write_status(run_dir, "queued", pid=None, message="starting")
    env = os.environ | {"DIVWEIGHTS_DATA_DIR": str(data_root), TRAIN_THREADS_ENV: str(training_threads())}
    command = [sys.executable, "-m", PACKAGE, "train", f"--run-dir={run_dir}"]  # one token: never read as an option
    with open(run_dir / "log.txt", "ab") as log:
        process = subprocess.Popen(command, cwd=checkout_root() or run_dir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if read_status(run_dir).get("pid") is None:  # the child has not written its own status yet
        write_status(run_dir, "queued", message="starting", **process_owner(process.pid))
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    return process


def process_owner(pid: int | None = None) -> dict:
    """The status fields that name a run's process: pid, its start time (so a reused pid is not taken for
    it) and the machine (a pid means nothing on another host sharing the disk)."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "pid_start": process_start(pid), "host": socket.gethostname()}


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux /proc), None where unknown."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def owner_alive(status: dict) -> bool | None:
    """Whether the process a status names still runs: True/False, or None where this machine cannot tell
    (no pid yet, or another host)."""
    pid = status.get("pid")
    if not pid or status.get("host", socket.gethostname()) != socket.gethostname():
        return None
    if status.get("pid_start") is not None and process_start(pid) is not None:
        return process_start(pid) == status["pid_start"] and pid_alive(pid, check_command=False)
    return pid_alive(pid)


def pid_alive(pid: int | None, check_command: bool = True) -> bool:
    """True if `pid` runs (zombies count as dead) and, on Linux, is a `core train` process (statuses
    written before pid_start was recorded)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs: trust kill(0)
    try:
        state = proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = proc.joinpath("cmdline").read_bytes()
    except OSError:
        return False
    return state != "Z" and (not check_command or ((b"core" in cmdline or b"divweights" in cmdline)
                                                   and b"train" in cmdline))


# --- listing and housekeeping -------------------------------------------------------------------

def refresh_status(run_dir: Path, stale_after_s: float = STALE_AFTER_S) -> dict:
    """Mark a queued/running run interrupted when its process is gone: at once on this machine (a SIGKILL
    leaves no final status), after `stale_after_s` without a heartbeat where this machine cannot tell."""
    status = read_status(run_dir)
    if status.get("state") not in ACTIVE_STATES:
        return status
    alive = owner_alive(status)
    stale = time.time() - float(status.get("heartbeat", 0)) > stale_after_s
    if alive is False or (alive is None and stale):
        message = f"process ended without a final status (last step {status.get('step', 0)})"
        return write_status(run_dir, "interrupted", message=message)
    return status


def active_runs(data_root: Path) -> int:
    """Training processes running (not waiting in the queue) for this data root: status files only
    (asked before every weights computation, so no configs or metrics are read)."""
    root = runs_root(data_root)
    folders = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")] if root.exists() else []
    return sum(1 for run_dir in folders if refresh_status(run_dir).get("state") == "running")


def list_runs(data_root: Path, stale_after_s: float = STALE_AFTER_S) -> list[dict]:
    """One summary per run folder (newest first): run_id, path, status fields, weights, preset."""
    root = runs_root(data_root)
    summaries = []
    for run_dir in sorted(root.iterdir() if root.exists() else [], key=_created, reverse=True):
        if not run_dir.is_dir() or run_dir.name.startswith("."):
            continue
        status = refresh_status(run_dir, stale_after_s)
        record = read_json(run_dir / "config.json")
        summaries.append({
            "eta_s": time_left(run_dir, status, record),
            "run_id": run_dir.name, "path": run_dir, "state": status.get("state", "unknown"),
            "step": status.get("step", 0), "steps": record.get("train", {}).get("steps"),
            "message": status.get("message", ""), "weights": record.get("weights", ""),
            "preset": record.get("preset"), "dataset": record.get("dataset", {}).get("source"),
            "model": record.get("train", {}).get("model", "wgan-gp"), "scheme": run_scheme(record),
        })
    return summaries


def time_left(run_dir: Path, status: dict, record: dict) -> float | None:
    """Seconds a running run still needs, from its latest ms per generator step; None otherwise."""
    steps, step = record.get("train", {}).get("steps"), status.get("step", 0)
    if status.get("state") != "running" or not steps:
        return None
    metrics = read_metrics(run_dir)
    if not metrics or "ms_per_step" not in metrics[-1]:
        return None
    return max(0.0, (steps - step) * metrics[-1]["ms_per_step"] / 1000.0)


def _created(run_dir: Path) -> float:
    return float(read_json(run_dir / "config.json").get("created", run_dir.stat().st_mtime))


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def delete_run(run_dir: Path) -> None:
    """Remove a run folder; refuses while its process is alive (stop it first)."""
    status = refresh_status(run_dir)
    if status.get("state") in ACTIVE_STATES:
        raise ValueError(f"run {Path(run_dir).name} is {status['state']}: stop it before deleting")
    shutil.rmtree(run_dir)


# --- reading a run back ---------------------------------------------------------------------------


def sampling_probabilities(p: np.ndarray | None, n: int) -> np.ndarray:
    """Real-batch sampling probabilities (n,): None -> uniform (the baseline); non-negative
    weights that do not sum to 1 are renormalised, then checked by core.diversity.vendi."""
    if p is None:
        return np.full(n, 1.0 / n)
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (n,):
        raise ValueError(f"weights have shape {p.shape} but the dataset has {n} images")
    total = p.sum()
    return check_probabilities(p / total if np.isfinite(total) and total > 0 else p, n)
