"""`torchrun --nproc-per-node N -m core weights FEATURES --gamma 0.8 --distributed --out P.npy`.

FEATURES is one .npy, or several shard files (comma-separated, or a folder of .npy files in name
order) read as one set of rows in that order. Every rank memory-maps the files (headers only) and
reads just its own contiguous, even slice of the rows: no rank holds all rows. gloo on the CPU,
nccl with --device cuda (one GPU a rank, cuda:LOCAL_RANK). Rank 0 prints the progress table and
writes P.npy (float64, the rows' order) atomically.

Failures end every rank with a message and no output file: input checks run on every rank and the
ranks agree before the first step (rank 0 prints which rank's rows were bad; exit 2); a rank that
dies makes the others' next collective fail, or torchrun stops them (exit 1).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np

from .common import UserError, user_path
from ..devices import cuda_available
from ..diversity.distributed import ShardError, ShardRows, save_gathered_npy
from ..diversity.weights import WeightsConfig, optimise_weights

LAUNCH_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")  # what torchrun sets


class Terminated(Exception):
    """SIGTERM: torchrun stops the remaining ranks when one has failed."""


def shard_paths(text: str) -> list[Path]:
    """'a.npy' | 'a.npy,b.npy' | 'folder/' (its *.npy, by name) -> the files, in row order."""
    parts = [user_path(part) for part in text.split(",") if part.strip()]
    if len(parts) == 1 and parts[0].is_dir():
        parts = sorted(parts[0].glob("*.npy"))
        if not parts:
            raise UserError(f"{text}: the folder holds no .npy shard files")
    for path in parts:
        if not path.is_file():
            raise UserError(f"no such file: {path}")
    return parts


def open_shards(paths: list[Path]) -> list[np.ndarray]:
    """Each file memory-mapped (nothing read yet), checked: 2-D, numeric, one width for all."""
    arrays = []
    for path in paths:
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError) as exc:  # a pickled, truncated, damaged or empty (zero-byte: EOFError) file
            reason = "the file is empty, 0 bytes" if path.stat().st_size == 0 else exc
            raise UserError(f"{path.name} is not a readable numeric .npy array ({reason})") from None
        if array.ndim != 2 or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise UserError(f"{path.name}: features must be a 2-D numeric array (n, d); got {array.dtype} {array.shape}")
        arrays.append(array)
    widths = sorted({a.shape[1] for a in arrays})
    if len(widths) > 1:
        raise UserError(f"the shard files have different widths {widths}; all need the same d")
    return arrays


def rank_rows(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of rank's even, contiguous share of n rows."""
    if world_size > n:
        raise UserError(f"{world_size} ranks for {n} items: use at most {n} processes")
    return n * rank // world_size, n * (rank + 1) // world_size


def read_rows(arrays: list[np.ndarray], start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of the shards read as one array (only those rows are read from disk)."""
    parts, offset = [], 0
    for array in arrays:
        lo, hi = max(start - offset, 0), min(stop - offset, len(array))
        if lo < hi:
            parts.append(np.asarray(array[lo:hi]))
        offset += len(array)
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def run_distributed(args, print_row) -> int:
    """One rank of `weights --distributed`; print_row(row) prints a row of the progress table."""
    missing = [name for name in LAUNCH_ENV if name not in os.environ]
    if missing:
        raise UserError("--distributed runs under torchrun, e.g. `torchrun --nproc-per-node 2 -m core weights "
                        f"FEATURES.npy --distributed --out P.npy` ({', '.join(missing)} not set)")
    rank = int(os.environ["RANK"])
    try:
        config = _config(args)
    except UserError:
        if rank == 0:  # the same on every rank: said once
            raise
        return 2
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run_rank(args, config, rank, print_row)
    except Terminated:
        print(f"error: rank {rank}: stopped by the launcher (another rank failed); nothing was written", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


def _config(args) -> WeightsConfig:
    if not isinstance(args.gamma, (int, float)):
        raise UserError(f"--gamma {args.gamma} is not available with --distributed; give a number")
    if getattr(args, "scheme", "diversity") != "diversity":
        raise UserError("--scheme baselines run in one process; --distributed computes diversity weights")
    return WeightsConfig(gamma=args.gamma, steps=args.steps, lr=args.lr, dtype=args.dtype, objective=args.objective)


def _terminate(signum, frame):
    raise Terminated()


def _run_rank(args, config: WeightsConfig, rank: int, print_row) -> int:
    import torch.distributed as dist

    device = _device(args.device)
    try:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    except (RuntimeError, ValueError) as exc:  # a rendezvous that never completes, a bad address
        raise UserError(f"rank {rank}: could not join the other ranks ({str(exc).strip()[:200]})") from None
    try:
        return _weights_of_rank(args, config, device, print_row)
    except (ShardError, UserError, ValueError, OSError) as exc:  # the same on every rank: said once
        if rank == 0:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a collective failed: another rank is gone
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]  # gloo's lines run long
        print(f"error: rank {rank}: lost contact with another rank ({reason}); nothing was written", file=sys.stderr)
        return 1
    finally:
        dist.destroy_process_group()


def _device(name: str | None) -> str:
    """None: a GPU a rank when there are GPUs, else the CPU."""
    if name is None:
        name = "cuda" if cuda_available() else "cpu"
    if name == "cpu":
        return "cpu"
    import torch

    if not cuda_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is available here")
    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank)
    return f"cuda:{local_rank}"


def _weights_of_rank(args, config: WeightsConfig, device: str, print_row) -> int:
    rows = ShardRows()
    local, error = None, None
    try:
        arrays = open_shards(shard_paths(args.features))
        start, stop = rank_rows(sum(len(a) for a in arrays), rows.rank, rows.world_size)
        rows.label = f"rows {start}–{stop - 1}"
        local = read_rows(arrays, start, stop)
    except (UserError, ValueError, OSError) as exc:
        error = str(exc)
    rows.agree(error)  # every rank learns of any rank's failure before the run starts
    out = user_path(args.out)

    def report(row: dict) -> None:
        if rows.rank == 0 and row["step"] == 1:  # the steps have started: every rank's input was fine
            print(f"{'step':>5} {'VS':>10} {'entropy':>10} {'ESS':>10}   ({rows.world_size} ranks)", flush=True)
        if rows.rank == 0 and (row["step"] % 10 == 0 or row["step"] == 1):
            print_row(row)

    result = optimise_weights(local, gamma=config.gamma, steps=config.steps, lr=config.lr, dtype=config.dtype,
                              device=device, on_step=report, shards=rows)
    save_gathered_npy(out, result.p, rows)
    if rows.rank == 0:
        print(f"uniform VS {result.vs_uniform:.4f}")
        print(f"final VS {result.vs_final:.4f}")
    return 0
