"""Which device a job runs on: one rule for weights, embedding, training and evaluation.

None or "auto" means the GPU when torch can use one, else the CPU; an explicit "cuda" without one is
an error (the CLI turns it into exit code 2). Importing torch only to learn that a laptop has no
GPU costs about 2 s per command, so on Linux the driver's device files are looked at first.
"""

from __future__ import annotations

import os
import sys

# What a GPU that torch.cuda drives leaves on Linux: NVIDIA's driver, AMD's ROCm, WSL2's GPU bridge.
GPU_DEVICE_FILES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def gpu_driver_absent() -> bool:
    """True only when no GPU driver can be there (Linux without its device files): then
    torch.cuda.is_available() would be False, and torch need not be imported to learn it."""
    return sys.platform.startswith("linux") and not any(os.path.exists(path) for path in GPU_DEVICE_FILES)


def cuda_available() -> bool:
    if gpu_driver_absent():
        return False
    import torch

    return torch.cuda.is_available()


def resolve_device(name=None) -> str:
    """None / "auto" -> "cuda" when available, else "cpu"; "cpu", "cuda", "cuda:1" (or a torch.device)
    are checked and returned as a string. Raises ValueError for an unknown name or for cuda without a GPU."""
    if name is None or str(name) == "auto":
        return "cuda" if cuda_available() else "cpu"
    kind, _, index = str(name).partition(":")
    if kind not in ("cpu", "cuda") or (index and not (kind == "cuda" and index.isdigit())):
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")
    if kind == "cuda" and not cuda_available():
        raise ValueError(f"device {name!r} was asked for but no CUDA GPU is available here")
    return str(name)
