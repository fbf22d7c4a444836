"""Algorithm 1 on rows sharded across the ranks of a torch.distributed process group, exact.

Every quantity of Algorithm 1 that couples items is a sum or a maximum over rows; the rest (softmax
numerators, (F U)², ∂L/∂w, Adam) is row-local. `ShardRows` completes those sums with all-reduces and
`core.diversity.weights` runs its one loop unchanged on each rank's rows (`optimise_weights(X_local,
..., shards=ShardRows())`). Per step, with k values of γ and r = rank:
- MAX of the k row maxima and SUM of the k exp-sums of the softmax (p = softmax(w) over all ranks);
- SUM of the k weighted Gram matrices Fᵢᵀ diag(pᵢ) Fᵢ (k·r² floats): every rank then does the same
  r×r eigendecomposition;
- SUM of 3k item sums: Σ p log p (entropy), Σ p ∂L/∂p (the softmax backward), Σ p² (ESS);
- MAX of one stop flag, so every rank ends at the same step.
The rank reduction is done once the same way: the d×d Gram Σᵢ Xᵢᵀ Xᵢ is all-reduced and rank 0's
eigenvectors are broadcast, so all ranks rotate with one basis. (One process with n ≤ d takes the n×n
side instead; both give F Fᵀ = X Xᵀ, so p agrees to round-off.)

Memory per rank: its rows once as float64 (checks, normalisation), then F and one work array
(nᵢ, r), w and Adam's moments (k, nᵢ), O(k·r² + d²). No rank holds another rank's rows.

Failures: input checks run on every rank, and the ranks agree before the first step: bad input on
any shard raises `ShardError` on every rank, naming the rank(s). A rank that dies makes the others'
next collective fail (gloo: the connection closes; torchrun also stops the remaining workers).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..arrays import is_tensor, xp
from ..devices import resolve_device
from .weights import _check_count, as_engine_dtype, kept_basis, normalised_features


class ShardError(ValueError):
    """Bad input on one or more ranks; raised on every rank alike, naming the ranks."""


class ShardRows:
    """Sums and maxima over the rows of all ranks of a process group (the methods of
    `core.diversity.weights.LocalRows`, as collectives), plus the sharded preparation.

    Every rank must make the same calls in the same order (collectives pair up across ranks).
    label: how this rank's rows are named in error messages (e.g. "rows 0–499").
    """

    def __init__(self, group=None, label: str = ""):
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError("sharded weights need an initialised torch.distributed process group "
                             "(start the ranks with torchrun and call torch.distributed.init_process_group)")
        self.group, self.label = group, label
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.backend = str(dist.get_backend(group))
        self.layout: dict = {}  # after prepare(): rank, world_size, offset, n_local, n_total

    # -------------------------------------------------------------- the LocalRows protocol
    def sum(self, a):
        """a: this rank's partial sums (a fresh array or tensor, any shape) -> the sums over all ranks."""
        return self._all_reduce(a, "SUM")

    def max(self, a):
        return self._all_reduce(a, "MAX")

    def any(self, flag) -> bool:
        return bool(self._all_reduce(np.array([int(bool(flag))], dtype=np.int64), "MAX")[0])

    def count(self, n: int) -> int:
        return int(self._all_reduce(np.array([int(n)], dtype=np.int64), "SUM")[0])

    # -------------------------------------------------------------- collectives
    @property
    def device(self):
        """Where collectives run: the current GPU under nccl, the CPU under gloo."""
        import torch

        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")

    def _all_reduce(self, a, op: str):
        import torch
        import torch.distributed as dist

        tensor = a if is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a))
        here = tensor.to(self.device)  # no copy when it is already there
        dist.all_reduce(here, op=getattr(dist.ReduceOp, op), group=self.group)
        return here.to(a.device) if is_tensor(a) else here.cpu().numpy()

    def broadcast(self, a):
        """Rank 0's a (array or tensor) on every rank; every rank passes one of the same shape and dtype."""
        import torch
        import torch.distributed as dist

        tensor = a if is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a))
        here = tensor.to(self.device).contiguous()
        dist.broadcast(here, src=self._global(0), group=self.group)
        return here.to(a.device) if is_tensor(a) else here.cpu().numpy()

    def gather(self, obj) -> list:
        """Every rank's obj (small, picklable), in rank order, on every rank."""
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def agree(self, error: str | None, info=None) -> list:
        """Every rank reports its error (None = fine) and some info; raise ShardError on every rank
        when any rank failed, else return the infos in rank order."""
        reports = self.gather((self.label, error, info))
        failed = [f"rank {r}{f' ({label})' if label else ''}: {err}" for r, (label, err, _) in enumerate(reports) if err]
        if failed:
            raise ShardError("; ".join(failed))
        return [each for _, _, each in reports]

    def send(self, array: np.ndarray, dst: int) -> None:
        import torch
        import torch.distributed as dist

        dist.send(torch.from_numpy(np.ascontiguousarray(array)).to(self.device), dst=self._global(dst), group=self.group)

    def recv(self, count: int, src: int) -> np.ndarray:
        import torch
        import torch.distributed as dist

        buffer = torch.empty(count, dtype=torch.float64, device=self.device)
        dist.recv(buffer, src=self._global(src), group=self.group)
        return buffer.cpu().numpy()

    def _global(self, group_rank: int) -> int:
        import torch.distributed as dist

        return group_rank if self.group is None else dist.get_global_rank(self.group, group_rank)

    # -------------------------------------------------------------- the sharded preparation
    def prepare(self, features, dtype, device):
        """This rank's rows (nᵢ, d) -> its rows of F (nᵢ, r): checked and normalised here, rank-reduced
        with the Gram matrix of all ranks (same r and basis everywhere). Sets self.layout."""
        X, error = None, None
        try:
            X = normalised_features(features, self._engine_device(device), min_rows=1)
        except ValueError as exc:
            error = str(exc)
        shapes = self.agree(error, None if X is None else tuple(X.shape))
        self.layout = self._layout(shapes)
        lam, V = xp(X).linalg.eigh(self.sum(X.T @ X))  # (d,), (d, d): Σ over ranks of Xᵢᵀ Xᵢ
        basis = kept_basis(self.broadcast(lam), self.broadcast(V), self.layout["n_total"])  # rank 0's basis
        return as_engine_dtype(X if basis is None else X @ basis, dtype)

    def _engine_device(self, device) -> str:
        """None: the GPU of this rank under nccl, else the CPU; otherwise the device asked for."""
        if device is None:
            return str(self.device) if self.backend == "nccl" else "cpu"
        return resolve_device(device)

    def _layout(self, shapes: list[tuple[int, int]]) -> dict:
        widths = sorted({d for _, d in shapes})
        if len(widths) > 1:
            raise ShardError(f"the ranks' features have different widths {widths}; all shards need the same d")
        counts = [n for n, _ in shapes]
        _check_count(sum(counts))
        return {"rank": self.rank, "world_size": self.world_size, "offset": sum(counts[: self.rank]),
                "n_local": counts[self.rank], "n_total": sum(counts)}


# ------------------------------------------------------------------ results back in one place

def gather_to_rank0(local: np.ndarray, rows: ShardRows) -> np.ndarray | None:
    """Every rank's (nᵢ,) float64 slice, concatenated in rank order, on rank 0 (None elsewhere).
    Rank 0 then holds n floats (not n·d): fine for p, not meant for features."""
    local = np.ascontiguousarray(local, dtype=np.float64)
    counts = rows.gather(len(local))
    if rows.rank != 0:
        rows.send(local, 0)
        return None
    return np.concatenate([local] + [rows.recv(c, src) for src, c in enumerate(counts) if src > 0])


def save_gathered_npy(path, local: np.ndarray, rows: ShardRows) -> Path | None:
    """Write every rank's (nᵢ,) float64 slice, in rank order, as one (n,) .npy at path.

    Rank 0 writes, a slice at a time (it never holds all of p), into a temp file in the target's
    folder, fsyncs, then renames: a reader never sees a half-written file and an existing file
    survives any failure. Returns the path on rank 0, None elsewhere; raises OSError on every rank
    when rank 0 could not write.
    """
    local = np.ascontiguousarray(local, dtype=np.float64)
    counts = rows.gather(len(local))
    if rows.rank == 0:
        error = _write_slices(Path(path), local, counts, rows)
    else:
        rows.send(local, 0)
        error = None
    import torch.distributed as dist

    status = [error]
    dist.broadcast_object_list(status, src=rows._global(0), group=rows.group)
    if status[0] is not None:
        raise OSError(f"{path} was not written: {status[0]}")
    return Path(path) if rows.rank == 0 else None


def _write_slices(path: Path, local: np.ndarray, counts: list[int], rows: ShardRows) -> str | None:
    """Rank 0's side of save_gathered_npy: returns an error message, or None when the file is in place.
    Every slice is received even after a write error, so no sender is left waiting."""
    handle, tmp, error = None, None, None
    try:
        try:
            handle, tmp = _open_npy(path, sum(counts))
        except OSError as exc:
            error = str(exc)
        for src, count in enumerate(counts):
            part = local if src == 0 else rows.recv(count, src)
            if handle is not None and error is None:
                try:
                    handle.write(part.astype("<f8", copy=False).tobytes())
                except OSError as exc:
                    error = str(exc)
        if handle is not None and error is None:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(tmp, path)
            tmp = None
    finally:
        if handle is not None and not handle.closed:
            handle.close()
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return error


def _open_npy(path: Path, n: int):
    """A temp file next to path holding the .npy header of an (n,) float64 array, open for the data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    handle = os.fdopen(fd, "wb")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f8")), "fortran_order": False, "shape": (n,)}
    np.lib.format.write_array_header_1_0(handle, header)
    return handle, tmp
