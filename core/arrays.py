"""Code written once for numpy arrays and torch tensors (CPU or CUDA).

`xp(a)` is the array module of `a`: numpy for arrays, torch for tensors. The weights engine and the
metrics use it so a GPU run executes the same lines as the CPU run (and tests can drive the torch
branch with CPU tensors). torch is only imported when a tensor is actually passed.
"""

from __future__ import annotations

import numpy as np


def is_tensor(a) -> bool:
    return type(a).__module__.startswith("torch")  # without importing torch


def xp(a):
    """numpy for numpy arrays (and anything array-like), torch for tensors."""
    if not is_tensor(a):
        return np
    import torch

    return torch


def to_numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if is_tensor(a) else np.asarray(a)


def as_float64(a):
    """A float64 copy-or-view in a's own library (and, for tensors, on a's device)."""
    if is_tensor(a):
        import torch

        return a.detach().to(torch.float64)
    return np.asarray(a, dtype=np.float64)


def on_device(arrays, device: str | None):
    """numpy arrays as float64 tensors on `device` (a CUDA device); unchanged for the CPU (None, "cpu")."""
    if device is None or str(device) == "cpu":
        return arrays
    import torch

    return [None if a is None else torch.as_tensor(np.asarray(a), dtype=torch.float64, device=device) for a in arrays]
