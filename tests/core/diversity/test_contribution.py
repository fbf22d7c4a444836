"""Contributions to the Vendi Score (the finite-difference derivative) and nearest neighbours."""

import dataclasses

import numpy as np
import pytest

from core.diversity import contribution as C
from core.diversity.vendi import normalise_rows, vendi_score


@pytest.fixture(scope="module")
def items():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 9))
    X[50:] = X[0] + 0.01 * rng.standard_normal((10, 9))  # near-duplicates of item 0
    p = rng.dirichlet(np.full(60, 2.0))
    return X, p


def _moved(p, i, eps):
    e_i = np.zeros_like(p)
    e_i[i] = 1.0
    return (1 - eps) * p + eps * e_i


@pytest.mark.parametrize("index", [0, 7, 33, 55])
def test_contribution_is_the_finite_difference_derivative(items, index):
    X, p = items
    eps = 1e-3 * p[index]  # small against p_i, so (1 + eps) p - eps e_i stays a probability vector
    numeric = (vendi_score(X, _moved(p, index, eps)) - vendi_score(X, _moved(p, index, -eps))) / (2 * eps)
    found = C.contributions(X, p)
    assert found.derivative[index] == pytest.approx(numeric, rel=1e-6)
    assert found.vs == pytest.approx(vendi_score(X, p), rel=1e-12)
    assert found.percent_per_percent[index] == pytest.approx(numeric / found.vs, rel=1e-6)


def test_contributions_under_p_average_to_zero(items):
    X, p = items  # moving mass towards p itself changes nothing
    assert float(p @ C.contributions(X, p).derivative) == pytest.approx(0.0, abs=1e-10)


def test_near_duplicates_contribute_less_than_unique_items(items):
    X, _ = items
    gain = C.contributions(X).percent_per_percent  # uniform p
    assert gain[50:].max() < np.median(gain[1:50])


def test_nearest_neighbours_match_the_full_matrix_in_blocks(items):
    X, _ = items
    K = normalise_rows(X) @ normalise_rows(X).T
    np.fill_diagonal(K, -np.inf)
    found, sims = C.nearest_neighbours(X, k=4, block=7)  # several blocks, a ragged last one
    np.testing.assert_array_equal(found, np.argsort(-K, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(sims, np.take_along_axis(K, found, 1), atol=1e-6)
    assert set(found[0]) <= set(range(50, 60))  # item 0's neighbours are its near-duplicates


def test_why_explains_in_words(items):
    X, p = items
    why = C.why(X, p, 0, k=3)
    assert why.relative_weight == pytest.approx(60 * p[0])
    assert "Vendi Score" in why.text and f"#{why.neighbours[0]} (" in why.text
    assert len(why.neighbours) == 3 and why.similarities[0] > 0.99
    with pytest.raises(ValueError, match="between 0 and 59"):
        C.why(X, p, 60)


def test_explanation_columns_for_every_example(items):
    X, p = items
    columns = C.explanation_columns(X, p, k=2)
    assert all(len(v) == 60 for v in columns.values())
    assert len(columns["nearest_neighbours"][0].split(";")) == 2


def _pixel_like_noise(n: int = 300, d: int = 64, seed: int = 5) -> np.ndarray:
    """Uniform noise in [0, 1]: like raw pixels, every image's nearest neighbour is about as similar."""
    return np.random.default_rng(seed).random((n, d))


def test_a_point_in_a_dense_cluster_is_crowded():
    X = _pixel_like_noise()
    X[1:8] = X[0] + 0.01 * np.random.default_rng(6).standard_normal((7, 64))  # a tight cluster around image 0
    why = C.why(X, np.full(len(X), 1 / len(X)), 0)
    assert why.region == "crowded" and "crowded region" in why.text and "isolated" not in why.text


def test_an_isolated_point_is_isolated():
    X = _pixel_like_noise()
    X[0] = np.eye(64)[0]  # one bright pixel: far from every noise image
    why = C.why(X, np.full(len(X), 1 / len(X)), 0)
    assert why.region == "isolated" and "isolated" in why.text and "crowded" not in why.text


def test_a_typical_point_in_noise_is_neither():
    X = _pixel_like_noise()
    n = len(X)
    nearest = C.nearest_neighbours(X, 1)[1][:, 0]
    gain = C.contributions(X).percent_per_percent
    scale = C.neighbour_scale(X, sample=n)
    # a point a hair more similar to its neighbour than the median, whose mass lowers VS: the old text
    # called such a point crowded ("0.981 vs typical 0.980")
    above = np.flatnonzero((nearest > scale.median) & (gain < 0))
    index = int(above[np.argmin(nearest[above])])
    p = np.random.default_rng(7).dirichlet(np.full(n, 50.0))
    explained = dataclasses.replace(C.explain_weights(X, p), scale=scale)  # the scale over every image
    text = C.why(X, p, index, explained=explained).text
    assert "crowded" not in text and "isolated" not in text and "neighbourhood is typical" in text
    regions = [scale.region(s) for s in nearest]
    assert regions.count("typical") >= 0.95 * n  # noise is noise: hardly any image is called out


def test_a_typical_neighbourhood_with_the_uniform_share_is_not_distinctive():
    X = _pixel_like_noise()
    why = C.why(X, np.full(len(X), 1 / len(X)), int(np.argsort(C.nearest_neighbours(X, 1)[1][:, 0])[150]))
    assert why.region == "typical" and "not distinctive" in why.text


def test_nearest_neighbours_of_unnormalised_float32_rows_match_the_cosine_matrix(items):
    X, _ = items  # float32 rows of any length: cosine from products and norms, no normalised copy
    X32 = (X * np.arange(1, 61)[:, None]).astype(np.float32)
    K = normalise_rows(X) @ normalise_rows(X).T
    np.fill_diagonal(K, -np.inf)
    found, sims = C.nearest_neighbours(X32, k=3, queries=[0, 17, 59], block=2)
    np.testing.assert_array_equal(found, np.argsort(-K[[0, 17, 59]], axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(sims, np.take_along_axis(K[[0, 17, 59]], found, 1), atol=1e-5)
    with pytest.raises(ValueError, match="NaN or infinite"):
        C.nearest_neighbours(np.vstack([X32, [np.nan] * 9]), k=2, queries=[0])


def test_kept_explanation_gives_the_same_why_and_columns(items):
    X, p = items
    explained = C.explain_weights(X, p)
    fresh, kept = C.why(X, p, 7, k=3), C.why(X, p, 7, k=3, explained=explained)
    assert (fresh.percent_per_percent, fresh.percent_per_percent_uniform, fresh.scale) == \
        (kept.percent_per_percent, kept.percent_per_percent_uniform, kept.scale)
    np.testing.assert_array_equal(fresh.neighbours, kept.neighbours)
    assert C.explanation_columns(X, p, explained=explained) == C.explanation_columns(X, p)


def test_export_columns_leave_out_neighbours_above_the_cap(items):
    X, p = items  # every example's neighbours cost n²·d: above the cap only the contributions are written
    full = C.explanation_columns(X, p, k=2)
    capped = C.explanation_columns(X, p, k=2, neighbours_max_n=59)
    assert set(capped) == {"vs_gain_pct_per_pct_mass", "vs_gain_pct_per_pct_mass_uniform"}
    assert all(capped[name] == full[name] for name in capped)
    assert "nearest_neighbours" in C.explanation_columns(X, p, k=2, neighbours_max_n=60)
