import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE_DIR = ROOT / "tests" / "reference"  # a copy of ../shared/reference (the published code's vectors)


def pytest_configure(config):
    """One BLAS/OpenMP thread per process for the whole suite. CI and developer machines have 2 cores and
    may be busy: OpenBLAS threads that spin-wait for a core held by other work made one 784×784 eigh loop
    take half an hour instead of half a minute. Speed is measured in benchmarks/, not here."""
    from threadpoolctl import threadpool_limits

    config._blas_limit = threadpool_limits(limits=1)


def pytest_collection_modifyitems(config, items):
    """`gpu` tests skip cleanly where CUDA is absent, unless DIVWEIGHTS_REQUIRE_GPU=1 (the GPU check,
    benchmarks/gpu_check.sh), where a missing GPU must fail loudly instead."""
    if os.environ.get("DIVWEIGHTS_REQUIRE_GPU") == "1":
        return
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """A fresh data root per test; DIVWEIGHTS_DATA_DIR points at it."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("DIVWEIGHTS_DATA_DIR", str(root))
    return root


@pytest.fixture(scope="session")
def reference_dir():
    return REFERENCE_DIR


@pytest.fixture
def one_thread():
    """2 shared cores: OpenMP threads fighting other processes are far slower than one thread."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def trained_run(data_root):
    """A one-step quick GAN run on two digit classes, made through the CLI (data_root/runs/base)."""
    from core.cli import main

    args = ["train", "digits", "--classes", "0,1", "--per-class", "40", "--preset", "quick", "--steps", "1",
            "--batch-size", "16", "--run-dir", str(data_root / "runs" / "base"), "--no-queue", "--device", "cpu"]
    assert main(args) == 0
    return data_root / "runs" / "base"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """The name of a tiny open_clip architecture (random weights, no download; tests/core/data/test_embed.py)."""
    import json

    import open_clip

    from tests.core.data.test_embed import TINY, TINY_CFG

    path = tmp_path_factory.mktemp("configs") / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(path)
    return TINY
