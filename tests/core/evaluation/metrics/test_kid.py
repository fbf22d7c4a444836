import numpy as np
import pytest

from core.evaluation.metrics.kid import kid, mmd2_unbiased, polynomial_kernel


def test_kid_is_near_zero_for_one_distribution_and_positive_when_shifted():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(600, 8))
    same = kid(real, rng.normal(size=(600, 8)), n_subsets=20, subset_size=300)
    shifted = kid(real, rng.normal(0.5, 1.0, size=(600, 8)), n_subsets=20, subset_size=300)
    assert abs(same.mean) < 3 * same.std + 1e-3
    assert shifted.mean > 10 * max(abs(same.mean), same.std)


def test_unbiased_mmd_matches_a_direct_double_loop():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3)), rng.normal(1, 1, size=(6, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / m**2
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kernel_is_cubic_in_the_scaled_inner_product():
    a = np.array([[1.0, 2.0]])
    b = np.array([[3.0, -1.0]])
    assert polynomial_kernel(a, b)[0, 0] == pytest.approx((1 / 2 + 1) ** 3)


def test_subsets_are_capped_and_seeded():
    rng = np.random.default_rng(2)
    real, gen = rng.normal(size=(50, 4)), rng.normal(size=(40, 4))
    first = kid(real, gen, n_subsets=5, subset_size=1000, seed=3)
    assert first.subset_size == 40 and first.n_subsets == 5
    assert kid(real, gen, n_subsets=5, subset_size=1000, seed=3) == first
