"""Shared by the metric tests: every input check is run on numpy arrays and on torch (CPU) tensors."""

import numpy as np
import pytest


@pytest.fixture(params=["numpy", "torch"])
def as_input(request):
    """A function turning a numpy array into the parametrised input type (float64)."""
    if request.param == "numpy":
        return lambda a: np.asarray(a, dtype=np.float64)
    torch = pytest.importorskip("torch")
    return lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))
