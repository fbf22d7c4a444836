"""Checkpoints of a run folder: safetensors only (tensors) + JSON metadata, never pickle; the last
KEEP_CHECKPOINTS kept; a corrupted newest one falls back to the one before."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from .. import __version__
from ..data.storage import atomic_write_bytes
from .networks import Generator
from .runs import (KEEP_CHECKPOINTS, RESUME_FREE_FIELDS, checkpoint_paths, checkpoint_step, load_config, read_config,
                                read_json)


CHECKPOINT_FORMAT = "divweights-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is corrupted, foreign, or not a safetensors file (e.g. a pickle)."""


def _tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and bytes: catches corruption anywhere in the data."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_bytes(trainer, extra: dict | None = None) -> bytes:
    """The trainer's full state as safetensors bytes; non-tensor state is JSON in the header."""
    from safetensors.torch import save

    tensors, meta = trainer.state_tensors()
    meta |= extra or {}
    header = {"format": CHECKPOINT_FORMAT, "meta": json.dumps(meta), "sha256": _tensors_digest(tensors)}
    return save(tensors, metadata=header)


def read_checkpoint(data: bytes) -> tuple[dict[str, torch.Tensor], dict]:
    """Parse and verify checkpoint bytes -> (tensors, meta). Raises CheckpointError.

    Only the safetensors parser and json ever see the bytes: a pickle (torch.save) file is
    recognised and refused without being unpickled.
    """
    from safetensors.torch import load

    if data[:1] == b"\x80" or data[:4] == b"PK\x03\x04":
        raise CheckpointError("it is a pickle / torch.save file, refused (never unpickled)")
    header = _safetensors_header(data)
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError("it is not a divweights checkpoint")
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types for bad offsets
        raise CheckpointError(f"unreadable tensors ({exc})") from None
    if _tensors_digest(tensors) != metadata.get("sha256"):
        raise CheckpointError("checksum mismatch (corrupted data)")
    return tensors, json.loads(metadata["meta"])


def _safetensors_header(data: bytes) -> dict:
    if len(data) < 8:
        raise CheckpointError("file is truncated")
    size = int.from_bytes(data[:8], "little")
    if size > len(data) - 8:
        raise CheckpointError("header is truncated or not safetensors")
    try:
        header = json.loads(data[8 : 8 + size])
    except ValueError:
        raise CheckpointError("header is not valid JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError("header is not a JSON object")
    return header


def save_checkpoint(run_dir: Path, trainer) -> Path:
    record = read_json(Path(run_dir) / "config.json")
    stamp = {"version": __version__, "train": asdict(trainer.config)}
    stamp |= {key: record.get(key) for key in ("dataset_fingerprint", "weights_fingerprint")}
    path = Path(run_dir) / "checkpoints" / f"ckpt-{trainer.step:07d}.safetensors"
    atomic_write_bytes(path, checkpoint_bytes(trainer, stamp))
    for old in checkpoint_paths(run_dir)[KEEP_CHECKPOINTS:]:
        old.unlink(missing_ok=True)
    return path


def restore_latest_checkpoint(run_dir: Path, trainer) -> tuple[Path | None, list[str]]:
    """Load the newest checkpoint that verifies into `trainer`; older ones are the fallback.

    Returns (path or None when there is no checkpoint file at all, [why each newer one was
    skipped]). Raises ValueError when checkpoint files exist but none is usable, or when the run's
    settings (config.json) differ from those the checkpoint was trained with.
    """
    skipped = []
    paths = checkpoint_paths(run_dir)
    for path in paths:
        try:
            tensors, meta = read_checkpoint(path.read_bytes())
            _check_same_settings(path, meta.get("train", {}), asdict(trainer.config))
            trainer.load_state_tensors(tensors, meta)
            return path, skipped
        except (CheckpointError, KeyError, RuntimeError) as exc:
            skipped.append(f"{path.name}: {exc}")
    if paths:
        raise ValueError("no usable checkpoint: " + "; ".join(skipped))
    return None, skipped


def _check_same_settings(path: Path, saved: dict, current: dict) -> None:
    """config.json edited after the checkpoint was written (other than steps and device): refuse."""
    changed = [f"{name} {saved.get(name)!r} -> {value!r}" for name, value in current.items()
               if name not in RESUME_FREE_FIELDS and name in saved and saved[name] != value]
    if changed:
        raise ValueError(f"config.json was edited after {path.name} was saved ({'; '.join(changed)}); "
                         "put the settings back, or start a new run")


def load_generator(run_dir: Path, device: str = "cpu"):
    """The generator of a run's newest good checkpoint, in eval mode on `device` (for a flow run: its
    EMA network behind the fixed-step ODE sampler, the same z (B, z_dim) -> images interface)."""
    record = read_config(run_dir)
    config = load_config(record)
    h, w, c = record["image_shape"]
    generator = Generator((c, h, w), config.z_dim, config.width) if config.model != "flow" else None
    problems = []
    for path in checkpoint_paths(run_dir):
        try:
            tensors, _ = read_checkpoint(path.read_bytes())
        except CheckpointError as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        if generator is None:
            from .flow_trainer import load_flow_sampler

            loaded = load_flow_sampler(tensors, config, (c, h, w)).to(device).eval()
        else:
            generator.load_state_dict({k[len("generator."):]: v for k, v in tensors.items() if k.startswith("generator.")})
            loaded = generator.to(device).eval()
        loaded.checkpoint_step = checkpoint_step(path)  # which training step an evaluation saw
        return loaded
    raise ValueError(f"{run_dir} has no usable checkpoint" + (": " + "; ".join(problems) if problems else ""))
