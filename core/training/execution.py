"""Executing a run folder inside a process: the job queue, status heartbeats, sample grids,
checkpoints, stop requests and failures, around core.training.trainer.train.

A run folder is created once (core.training.runs.create_run: config.json and weights.npy, written
by the workbench); `execute(run_dir)` only carries it out: it rebuilds the dataset from the saved
spec, checks it and the weights against their fingerprints, and trains from the start or from the
last good checkpoint. `python -m core train --run-dir DIR` is this function in its own process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import numpy as np

from ..data.datasets import DatasetSpec
from ..data.storage import atomic_write_bytes, atomic_write_json
from ..jobs import OnProgress, Progress, ShouldStop, stopped
from ..threads import apply_training_threads, wait_if_asked
from .checkpoints import restore_latest_checkpoint, save_checkpoint
from .config import TrainConfig
from .runs import (ACTIVE_STATES, RESUME_FREE_FIELDS, append_event, append_metrics, checkpoint_paths,
                                environment, job_lock, latest_checkpoint_step, load_config, owner_alive, process_owner, read_config,
                                read_status,
                                refresh_status, request_stop, runs_root, stop_requested, trim_metrics,
                                weights_fingerprint, write_status)
from .trainer import LossMeter, Trainer, train

HEARTBEAT_S = 2.0  # seconds between status.json heartbeats while running or queued


class _RunHooks:
    """on_step for core.training.trainer.train: metrics, heartbeat, sample grids and checkpoints."""

    def __init__(self, run_dir: Path, trainer, on_progress: OnProgress = None, runs_root: Path | None = None):
        self.run_dir, self.trainer, self.config, self.on_progress = run_dir, trainer, trainer.config, on_progress
        self.runs_root = runs_root  # where the studio asks training to make way (core.threads)
        self.meter = LossMeter()
        self.latents = trainer.fixed_latents()
        self.last_beat = time.monotonic()

    def __call__(self, step: int, losses: dict) -> None:
        c = self.config
        self.meter.add(losses)
        if step % c.log_every == 0 or step == c.steps:
            record = self.meter.read()
            append_metrics(self.run_dir, {"step": step, "time": time.time(), **record})
            if self.on_progress is not None:
                self.on_progress(Progress("train", step, c.steps, f"step {step}/{c.steps}", record))
        if step % c.sample_every == 0 or step == c.steps:
            save_sample_grid(self.run_dir, self.trainer, self.latents)
        if step % c.checkpoint_every == 0 or step == c.steps:
            save_checkpoint(self.run_dir, self.trainer)
        self._beat(step)
        if self.runs_root is not None:
            wait_if_asked(self.runs_root, lambda: self._beat(step), lambda: stop_requested(self.run_dir))

    def _beat(self, step: int) -> None:
        if time.monotonic() - self.last_beat > HEARTBEAT_S:
            write_status(self.run_dir, "running", step=step)
            self.last_beat = time.monotonic()


def execute(run_dir: Path, data_root: Path, queue: bool = True, overrides: dict | None = None,
            on_progress: OnProgress = None, should_stop: ShouldStop = None) -> str:
    """Carry out the run folder `run_dir` in this process; returns the final state.

    overrides: new values of RESUME_FREE_FIELDS (steps, device), saved into config.json. A run whose
    inputs cannot be rebuilt (dataset gone or changed, weights changed) is marked failed and raises.
    """
    run_dir = Path(run_dir)
    apply_training_threads()  # started beside the studio: leave it a core
    try:
        config, images, p = _inputs(run_dir, data_root, overrides or {})
    except (ValueError, FileNotFoundError, KeyError) as exc:
        if (run_dir / "config.json").exists() and not _active_elsewhere(run_dir):  # never touch a live run
            write_status(run_dir, "failed", message=f"could not start: {exc}")
        raise
    return execute_run(run_dir, data_root, config, images, p, resume=bool(checkpoint_paths(run_dir)), queue=queue,
                       on_progress=on_progress, should_stop=should_stop)


def _active_elsewhere(run_dir: Path) -> bool:
    """True while another live process queues or trains this run."""
    status = refresh_status(run_dir)
    return (status.get("state") in ACTIVE_STATES and status.get("pid") not in (None, os.getpid())
            and owner_alive(status) is not False)


def _inputs(run_dir: Path, data_root: Path, overrides: dict):
    """(TrainConfig, images, p) of a run folder, each checked against what config.json recorded."""
    record = read_config(run_dir)
    unknown = set(overrides) - set(RESUME_FREE_FIELDS)
    if unknown:
        raise ValueError(f"only {', '.join(RESUME_FREE_FIELDS)} may change for an existing run "
                         f"(not {', '.join(sorted(unknown))})")
    config = load_config(record | {"train": record["train"] | overrides}).validate()
    dataset = DatasetSpec.from_dict(record["dataset"]).load_saved(data_root)
    if dataset.fingerprint != record.get("dataset_fingerprint"):
        raise ValueError(f"the dataset of {run_dir.name} changed since the run was created (fingerprint differs)")
    p = np.load(run_dir / "weights.npy", allow_pickle=False)
    if weights_fingerprint(p) != record.get("weights_fingerprint"):
        raise ValueError(f"weights.npy of {run_dir.name} changed since the run was created")
    if overrides:  # checked: now they become the run's settings
        atomic_write_json(run_dir / "config.json", record | {"train": record["train"] | overrides})
    return config, dataset.images, p


def execute_run(run_dir: Path, data_root: Path, config: TrainConfig, images: np.ndarray,
                p: np.ndarray, resume: bool = False, queue: bool = True, on_progress: OnProgress = None,
                should_stop: ShouldStop = None) -> str:
    """Run (or resume) the training of `run_dir` in this process; returns the final state.

    Waits as "queued" for the job lock; a stop request (or SIGTERM) checkpoints and exits as
    "interrupted"; CUDA out-of-memory and other errors mark the run "failed" with the message.
    """
    run_dir = Path(run_dir)
    if _active_elsewhere(run_dir):
        current = read_status(run_dir)
        raise ValueError(f"run {run_dir.name} is already {current['state']} in process {current['pid']}")
    owner = process_owner()
    step = (latest_checkpoint_step(run_dir) or 0) if resume else 0  # a resumed run waits at its checkpoint
    write_status(run_dir, "queued", step=step, steps=config.steps, message="waiting for the job lock", **owner)
    lock = job_lock(data_root, lambda: write_status(run_dir, "queued", **owner),
                    lambda: stop_requested(run_dir)) if queue else contextlib.nullcontext(True)
    with _stop_on_sigterm(run_dir), lock as acquired:
        if not acquired:
            (run_dir / "stop.request").unlink(missing_ok=True)
            write_status(run_dir, "interrupted", message="stopped while queued")
            return "interrupted"
        try:
            return _train_in_folder(run_dir, config, images, p, resume, on_progress, should_stop, runs_root(data_root))
        except KeyboardInterrupt:
            write_status(run_dir, "interrupted", message="interrupted (Ctrl-C): resume from the last checkpoint")
            raise
        except Exception as exc:
            write_status(run_dir, "failed", message=_failure_message(exc))
            if _is_out_of_memory(exc):
                return "failed"
            raise


def _train_in_folder(run_dir: Path, config: TrainConfig, images, p, resume: bool, on_progress: OnProgress = None,
                     should_stop: ShouldStop = None, runs_root_: Path | None = None) -> str:
    trainer = make_trainer(config, images, p)
    resumed = {}
    if resume:
        _, skipped = restore_latest_checkpoint(run_dir, trainer)
        trim_metrics(run_dir, trainer.step)
        resumed = {"resumed_from": trainer.step, "skipped_checkpoints": skipped}
    message = f"resumed from step {trainer.step}" if resume else "started"
    if skipped := resumed.get("skipped_checkpoints"):
        message += f" (skipped {'; '.join(skipped)})"
    write_status(run_dir, "running", step=trainer.step, steps=config.steps, message=message, **resumed,
                 **process_owner())
    append_event(run_dir, "resumed" if resume else "started", step=trainer.step, steps=config.steps,
                 device=str(trainer.device), pid=os.getpid(), environment=environment(), **resumed)
    hooks = _RunHooks(run_dir, trainer, on_progress, runs_root_)
    train(config, images, p, on_step=hooks, trainer=trainer,
          should_stop=lambda: stop_requested(run_dir) or stopped(should_stop))
    if trainer.step < config.steps:  # stopped: checkpoint then exit
        if not checkpoint_at(run_dir, trainer.step):  # not saved by the hooks already (step 0 included)
            save_checkpoint(run_dir, trainer)
        (run_dir / "stop.request").unlink(missing_ok=True)
        write_status(run_dir, "interrupted", step=trainer.step, message=f"stopped at step {trainer.step}")
        return "interrupted"
    write_status(run_dir, "finished", step=trainer.step, message=f"finished {trainer.step} steps")
    return "finished"


def checkpoint_at(run_dir: Path, step: int) -> bool:
    return any(path.name == f"ckpt-{step:07d}.safetensors" for path in checkpoint_paths(run_dir))


def make_trainer(config: TrainConfig, images, p):
    """The trainer of `config.model`: the paper's WGAN-GP `Trainer` or the flow-matching `FlowTrainer`
    (same interface: train_step, sample, fixed_latents, state_tensors / load_state_tensors)."""
    if config.model == "flow":
        from .flow_trainer import FlowTrainer

        return FlowTrainer(config, images, p)
    return Trainer(config, images, p)


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
