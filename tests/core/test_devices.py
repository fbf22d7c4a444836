"""core/devices.py: one device rule for every job, and no torch import to learn a laptop has no GPU."""

import subprocess
import sys

import pytest
import torch

from core import devices
from core.devices import cuda_available, gpu_driver_absent, resolve_device
from tests.conftest import ROOT

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answers")


def test_explicit_cpu_is_kept():
    assert resolve_device("cpu") == "cpu"


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "cpu:1", "mps", ""])
def test_unknown_names_are_a_clear_error(name):
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device(name)


@no_cuda
@pytest.mark.parametrize("name", [None, "auto"])
def test_auto_is_cpu_without_cuda(name):
    assert resolve_device(name) == "cpu"


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_a_gpu_is_a_clear_error(name):
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device(name)


def test_the_shortcut_agrees_with_torch():
    """Where the driver's files are absent torch must agree that CUDA is unavailable."""
    assert cuda_available() == torch.cuda.is_available()
    if gpu_driver_absent():
        assert not torch.cuda.is_available()


def test_a_driver_file_sends_the_question_to_torch(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "GPU_DEVICE_FILES", (str(tmp_path),))  # an existing path stands for /dev/nvidiactl
    assert not gpu_driver_absent()
    assert cuda_available() == torch.cuda.is_available()


@pytest.mark.skipif(not gpu_driver_absent(), reason="a GPU driver is present here")
def test_weights_on_a_cpu_only_machine_never_import_torch():
    code = ("import sys, numpy as np; from core.diversity.weights import optimise_weights; "
            "r = optimise_weights(np.random.default_rng(0).random((20, 5)), steps=2); "
            "print(r.config.device, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "False"]
