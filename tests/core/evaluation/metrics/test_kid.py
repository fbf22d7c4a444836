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


def _double_loop_mmd2(x, y):
    """Unbiased MMD² for sizes m, n by definition: within-set pairs i ≠ j, all cross pairs."""
    k = lambda a, b: (a @ b / x.shape[1] + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.mark.parametrize("m, n", [(5, 9), (9, 5), (2, 3)])
def test_unbiased_mmd_for_unequal_sizes_matches_a_direct_double_loop(as_input, m, n):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(m, 3)), rng.normal(0.5, 1.5, size=(n, 3))
    assert mmd2_unbiased(as_input(x), as_input(y)) == pytest.approx(_double_loop_mmd2(x, y), rel=1e-12)


@pytest.mark.parametrize("m, n", [(1, 5), (5, 1)])
def test_unbiased_mmd_refuses_a_single_row(as_input, m, n):
    rng = np.random.default_rng(5)
    with pytest.raises(ValueError, match="at least 2 rows"):
        mmd2_unbiased(as_input(rng.normal(size=(m, 3))), as_input(rng.normal(size=(n, 3))))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("side", ["real", "gen"])
def test_kid_refuses_non_finite_features(as_input, bad, side):
    rng = np.random.default_rng(6)
    real, gen = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    (real if side == "real" else gen)[7, 1] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        kid(as_input(real), as_input(gen), n_subsets=3, subset_size=10)
    with pytest.raises(ValueError, match="NaN or inf"):
        mmd2_unbiased(as_input(real), as_input(gen))


@pytest.mark.parametrize("n_subsets", [0, -1])
def test_kid_refuses_fewer_than_one_subset(as_input, n_subsets):
    x = as_input(np.random.default_rng(7).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="n_subsets"):
        kid(x, x, n_subsets=n_subsets, subset_size=10)


@pytest.mark.parametrize("subset_size, n_real, n_gen", [(1, 20, 20), (0, 20, 20), (10, 1, 20), (10, 20, 1)])
def test_kid_refuses_subsets_of_fewer_than_two_rows(as_input, subset_size, n_real, n_gen):
    rng = np.random.default_rng(8)
    real, gen = as_input(rng.normal(size=(n_real, 3))), as_input(rng.normal(size=(n_gen, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        kid(real, gen, n_subsets=3, subset_size=subset_size)
