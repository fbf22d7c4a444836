"""Executing a training run inside its process: the job queue, status heartbeats, sample grids,
checkpoints, stop requests and failures, around core.training.trainer.train. The folder layout and everything
that reads a run back live in core.training.runs; `python -m core train` and the study call in here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import numpy as np

from core.training.runs import (ACTIVE_STATES, append_metrics, check_resume, create_run, job_lock, pid_alive, read_config,
                       refresh_status, request_stop, run_record, sampling_probabilities,
                                 stop_requested, trim_metrics, write_status)
from core.data.storage import atomic_write_bytes
from core.training.checkpoints import restore_latest_checkpoint, save_checkpoint
from core.training.config import TrainConfig
from core.training.trainer import LossMeter, Trainer, train

HEARTBEAT_S = 2.0  # seconds between status.json heartbeats while running or queued


class _RunHooks:
    """on_step for core.training.trainer.train: metrics, heartbeat, sample grids and checkpoints."""

    def __init__(self, run_dir: Path, trainer):
        self.run_dir, self.trainer, self.config = run_dir, trainer, trainer.config
        self.meter = LossMeter()
        self.latents = trainer.fixed_latents()
        self.last_beat = time.monotonic()

    def __call__(self, step: int, losses: dict) -> None:
        c = self.config
        self.meter.add(losses)
        if step % c.log_every == 0 or step == c.steps:
            append_metrics(self.run_dir, {"step": step, "time": time.time(), **self.meter.read()})
        if step % c.sample_every == 0 or step == c.steps:
            save_sample_grid(self.run_dir, self.trainer, self.latents)
        if step % c.checkpoint_every == 0 or step == c.steps:
            save_checkpoint(self.run_dir, self.trainer)
        if time.monotonic() - self.last_beat > HEARTBEAT_S:
            write_status(self.run_dir, "running", step=step)
            self.last_beat = time.monotonic()


def execute_run(run_dir: Path, data_root: Path, config: TrainConfig, images: np.ndarray,
                p: np.ndarray, resume: bool = False, queue: bool = True) -> str:
    """Run (or resume) the training of `run_dir` in this process; returns the final state.

    Waits as "queued" for the job lock; a stop request (or SIGTERM) checkpoints and exits as
    "interrupted"; CUDA out-of-memory and other errors mark the run "failed" with the message.
    """
    run_dir = Path(run_dir)
    pid = os.getpid()
    current = refresh_status(run_dir)
    if current.get("state") in ACTIVE_STATES and current.get("pid") not in (None, pid) and pid_alive(current["pid"]):
        raise ValueError(f"run {run_dir.name} is already {current['state']} in process {current['pid']}")
    write_status(run_dir, "queued", pid=pid, step=0, steps=config.steps, message="waiting for the job lock")
    lock = job_lock(data_root, lambda: write_status(run_dir, "queued", pid=pid),
                    lambda: stop_requested(run_dir)) if queue else contextlib.nullcontext(True)
    with _stop_on_sigterm(run_dir), lock as acquired:
        if not acquired:
            (run_dir / "stop.request").unlink(missing_ok=True)
            write_status(run_dir, "interrupted", message="stopped while queued")
            return "interrupted"
        try:
            return _train_in_folder(run_dir, config, images, p, resume)
        except KeyboardInterrupt:
            write_status(run_dir, "interrupted", message="interrupted (Ctrl-C): resume from the last checkpoint")
            raise
        except Exception as exc:
            write_status(run_dir, "failed", message=_failure_message(exc))
            if _is_out_of_memory(exc):
                return "failed"
            raise


def _train_in_folder(run_dir: Path, config: TrainConfig, images, p, resume: bool) -> str:

    trainer = Trainer(config, images, p)
    resumed = {}
    if resume:
        _, skipped = restore_latest_checkpoint(run_dir, trainer)
        trim_metrics(run_dir, trainer.step)
        resumed = {"resumed_from": trainer.step, "skipped_checkpoints": skipped}
    message = f"resumed from step {trainer.step}" if resume else "started"
    if skipped := resumed.get("skipped_checkpoints"):
        message += f" (skipped {'; '.join(skipped)})"
    write_status(run_dir, "running", pid=os.getpid(), step=trainer.step, steps=config.steps, message=message, **resumed)
    hooks = _RunHooks(run_dir, trainer)
    train(config, images, p, on_step=hooks, should_stop=lambda: stop_requested(run_dir), trainer=trainer)
    if trainer.step < config.steps:  # stopped: checkpoint then exit
        if trainer.step % config.checkpoint_every != 0:  # not saved by the hooks already
            save_checkpoint(run_dir, trainer)
        (run_dir / "stop.request").unlink(missing_ok=True)
        write_status(run_dir, "interrupted", step=trainer.step, message=f"stopped at step {trainer.step}")
        return "interrupted"
    write_status(run_dir, "finished", step=trainer.step, message=f"finished {trainer.step} steps")
    return "finished"


@contextlib.contextmanager
def _stop_on_sigterm(run_dir: Path):
    """While training, SIGTERM becomes a stop request, so a terminated run still checkpoints."""
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: request_stop(run_dir))
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _failure_message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    prefix = "CUDA out of memory" if _is_out_of_memory(exc) else type(exc).__name__
    return f"{prefix}: {text}"[:500]


# --- in-process use (the study, notebooks) -------------------------------------------------------

def run_training(run_dir: Path, dataset, p: np.ndarray | None, config: TrainConfig,
                 data_root: Path | None = None, queue: bool = True, dataset_spec: dict | None = None) -> str:
    """Train `dataset` (core.data.datasets.Dataset) into `run_dir` in this process, resuming the run
    already there (refused if its inputs changed). Returns the final state.

    dataset_spec: how to rebuild the dataset ({source, classes, per_class, seed}, the arguments of
    core.data.datasets.load_dataset), recorded in config.json so the run can be evaluated later."""
    from core.data.storage import default_data_root

    run_dir = Path(run_dir)
    p = sampling_probabilities(p, len(dataset.images))
    record = run_record(config, dataset_spec or {"source": dataset.name}, dataset.fingerprint, p, "uniform" if np.ptp(p) == 0 else "weights")
    record["image_shape"] = list(dataset.images.shape[1:])
    resume = (run_dir / "config.json").exists()
    if resume:
        check_resume(read_config(run_dir), record)
    else:
        create_run(run_dir, record, p)
    root = Path(data_root) if data_root else default_data_root()
    return execute_run(run_dir, root, config, dataset.images, p, resume=resume, queue=queue)


def save_sample_grid(run_dir: Path, trainer, latents) -> Path:
    """PNG grid (8 per row) of the generator's images for the fixed latent batch."""
    import io

    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid(trainer.sample(latents), nrow=8, padding=2, pad_value=1.0)  # (C, H, W)
    array = (grid.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy())
    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[2] == 1 else array).save(buffer, format="PNG")
    return atomic_write_bytes(Path(run_dir) / "samples" / f"step-{trainer.step:07d}.png", buffer.getvalue())
