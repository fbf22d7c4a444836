import numpy as np
import pytest
from scipy import linalg

from core.evaluation.metrics.fid import feature_statistics, fid, frechet_distance, weighted_fid


def _rng_features(seed, n=400, d=6, shift=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d))
    return shift + scale * rng.normal(size=(n, d)) @ mixing


def test_weighted_fid_with_uniform_weights_equals_fid():
    real, gen = _rng_features(0), _rng_features(1, shift=0.5)
    uniform = np.full(len(real), 3.7)  # any constant: only ratios matter
    assert weighted_fid(real, gen, uniform) == pytest.approx(fid(real, gen), rel=1e-12)


def test_fid_of_a_set_against_itself_is_zero():
    real = _rng_features(2, n=50, d=64)  # n < d: singular covariance, the hard case
    assert fid(real, real) == pytest.approx(0.0, abs=1e-8)


def test_two_gaussians_closed_form_diagonal():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, -1.0, 2.0])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + (var1 + var2 - 2 * np.sqrt(var1 * var2)).sum()
    assert frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-12)


def test_frechet_matches_scipy_sqrtm_for_full_covariances():
    a, b = _rng_features(3, n=200, d=5), _rng_features(4, n=200, d=5, shift=1.0)
    (m1, s1), (m2, s2) = feature_statistics(a), feature_statistics(b)
    reference = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(reference, rel=1e-9)


def test_fid_of_large_samples_approaches_the_population_value():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(100_000, 2)) * [1.0, 2.0]
    gen = rng.normal(size=(100_000, 2)) * [3.0, 2.0] + [1.0, 0.0]
    expected = 1.0 + (1 + 9 - 2 * 3) + 0.0  # |Δμ|² + Σ (σ1 − σ2)²
    assert fid(real, gen) == pytest.approx(expected, rel=0.03)


def test_weighted_statistics_follow_the_reliability_weights_formula():
    """Σ* = Σ wᵢ(xᵢ−μ*)(xᵢ−μ*)ᵀ / (V1 − V2/V1), V1 = Σw, V2 = Σw²: numpy.cov with aweights."""
    x = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    w = np.array([1.0, 1.0, 2.0])
    mu, sigma = feature_statistics(x, w)
    np.testing.assert_allclose(mu, [0.5, 2.0])
    centred = x - mu
    v1, v2 = w.sum(), (w**2).sum()
    np.testing.assert_allclose(sigma, (w[:, None] * centred).T @ centred / (v1 - v2 / v1), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False, aweights=w), rtol=1e-12)


def test_unweighted_statistics_are_the_unbiased_estimates():
    x = _rng_features(7, n=30, d=4)
    mu, sigma = feature_statistics(x)
    np.testing.assert_allclose(mu, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x, rowvar=False), rtol=1e-12)  # 1/(n−1), as every peer


def test_fid_equals_the_peers_formula_with_unbiased_covariances():
    """torch-fidelity, pytorch-fid, clean-fid, torchmetrics: np.cov (1/(n−1)) and scipy's sqrtm."""
    real, gen = _rng_features(8, n=60, d=5), _rng_features(9, n=40, d=5, shift=0.7, scale=1.3)
    s1, s2 = np.cov(real, rowvar=False), np.cov(gen, rowvar=False)
    diff = real.mean(0) - gen.mean(0)
    reference = diff @ diff + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert fid(real, gen) == pytest.approx(reference, rel=1e-6)
    assert weighted_fid(real, gen, np.ones(len(real))) == pytest.approx(reference, rel=1e-6)


def test_weights_pull_the_target_toward_heavy_examples():
    rng = np.random.default_rng(6)
    real = np.vstack([rng.normal(0, 1, (300, 3)), rng.normal(5, 1, (100, 3))])
    gen = rng.normal(5, 1, (400, 3))  # the generator covers only the rare mode
    favour_rare = np.r_[np.full(300, 0.01), np.full(100, 1.0)]
    assert weighted_fid(real, gen, favour_rare) < fid(real, gen) / 5


@pytest.mark.parametrize("weights", [np.zeros(10), -np.ones(10), np.ones(9), np.r_[np.ones(9), np.nan]])
def test_bad_weights_are_refused(weights):
    x = np.random.default_rng(0).normal(size=(10, 3))
    with pytest.raises(ValueError):
        weighted_fid(x, x, weights)


def test_nan_features_are_refused():
    x = np.ones((5, 2))
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fid(x, np.ones((5, 2)))


@pytest.mark.parametrize("n_real, n_gen", [(1, 10), (10, 1), (1, 1)])
def test_fewer_than_two_rows_are_refused(as_input, n_real, n_gen):
    rng = np.random.default_rng(10)
    real, gen = as_input(rng.normal(size=(n_real, 3))), as_input(rng.normal(size=(n_gen, 3)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        fid(real, gen)
    with pytest.raises(ValueError, match="at least 2 rows"):
        weighted_fid(real, gen, np.ones(n_real))


def test_weights_on_a_single_row_are_refused(as_input):
    """All weight on one row: V1 − V2/V1 = 0, the weighted covariance is undefined."""
    x = as_input(np.random.default_rng(11).normal(size=(10, 3)))
    with pytest.raises(ValueError, match="one row"):
        weighted_fid(x, x, np.eye(10)[4])
