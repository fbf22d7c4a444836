import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REFERENCE_DIR = ROOT.parent / "shared" / "reference"


def pytest_collection_modifyitems(config, items):
    """`gpu` tests skip cleanly where CUDA is absent."""
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
    if not REFERENCE_DIR.exists():
        pytest.skip("../shared/reference is not beside this checkout")
    return REFERENCE_DIR
