"""The modes view: shares sum to 1, match the Vendi Score's spectrum, and the weights balance them."""

import numpy as np
import pytest

from core.diversity.modes import modes_view
from core.diversity.vendi import normalise_rows, vendi_score, weighted_spectrum_features
from core.diversity.weights import optimise_weights


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    data = load_digits()
    keep = np.flatnonzero(data.target < 3)[:240]
    return data.data[keep] + 0.5, data.target[keep]


@pytest.mark.parametrize("wide", [False, True])
def test_shares_sum_to_one_and_match_the_vendi_spectrum(digits, wide):
    X = digits[0][:40] if wide else digits[0]  # n < d: the rank-reduced side; n > d: the d×d side
    X = np.hstack([X, X[:, ::-1]]) if wide else X
    p = np.random.default_rng(0).dirichlet(np.ones(len(X)))
    view = modes_view(X, p, n_modes=3, per_mode=4)
    for shares in (view.shares_uniform, view.shares_weighted, view.weighted_along_uniform):
        assert shares.sum() == pytest.approx(1.0, abs=1e-12) and (shares >= 0).all()
    reference = np.sort(weighted_spectrum_features(normalise_rows(X), p))[::-1]
    reference = np.maximum(reference, 0) / np.maximum(reference, 0).sum()
    np.testing.assert_allclose(view.shares_weighted, reference[: view.shares_weighted.size], atol=1e-10)
    assert view.vs_weighted == pytest.approx(vendi_score(X, p), rel=1e-9)
    assert view.vs_uniform == pytest.approx(vendi_score(X), rel=1e-9)
    assert len(view.top_images) == 3 and all(len(t) == 4 for t in view.top_images)


def test_weights_balance_the_modes(digits):
    X, _ = digits
    view = modes_view(X, optimise_weights(X, gamma=0.8).p)
    assert view.weighted_along_uniform[0] < view.shares_uniform[0]  # the dominant mode loses share
    assert view.vs_weighted > view.vs_uniform


def test_top_images_load_most_on_their_mode():
    rng = np.random.default_rng(1)
    X = 0.05 * rng.standard_normal((30, 4))
    X[:20, 0] += 1.0  # a big mode along axis 0, a small one along axis 1
    X[20:, 1] += 1.0
    view = modes_view(X, None, n_modes=2, per_mode=5)
    assert set(view.top_images[0]) <= set(range(20)) and set(view.top_images[1]) <= set(range(20, 30))
    with pytest.raises(ValueError):
        modes_view(X, None, n_modes=0)
