"""FID, weighted FID, precision/recall and KID run the same code on torch tensors (a GPU in use; CPU
tensors here) as on numpy arrays, and give the same numbers."""

import numpy as np
import pytest
import torch

from core.evaluation.metrics.fid import fid, weighted_fid
from core.evaluation.metrics.kid import kid
from core.evaluation.metrics.prc import precision_recall


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    real, gen = rng.normal(size=(300, 24)), rng.normal(0.3, 1.2, size=(250, 24))
    return real, gen, rng.dirichlet(np.ones(300))


def metric_values(real, gen, p):
    pr = precision_recall(real, gen, batch_size=64)
    return [fid(real, gen), weighted_fid(real, gen, p), pr.precision, pr.recall,
            kid(real, gen, n_subsets=5, subset_size=100).mean]


def tensors(arrays, device):
    return [torch.as_tensor(a, dtype=torch.float64, device=device) for a in arrays]


def test_torch_tensors_give_the_numpy_numbers(sets):
    real, gen, p = sets
    expected = metric_values(real, gen, p)
    np.testing.assert_allclose(metric_values(*tensors([real, gen], "cpu"), p), expected, rtol=1e-10, atol=1e-12)
    assert expected[0] > 0 and 0 < expected[2] < 1  # not a degenerate case


@pytest.mark.gpu
def test_cuda_tensors_give_the_numpy_numbers(sets):
    real, gen, p = sets
    np.testing.assert_allclose(metric_values(*tensors([real, gen], "cuda"), p), metric_values(real, gen, p),
                               rtol=1e-10, atol=1e-12)
