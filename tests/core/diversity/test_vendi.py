import numpy as np
import pytest

from core.diversity.vendi import vendi_score, vendi_score_kernel

K_A = np.array([[1, 0, 0, 0], [0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1]], dtype=float)
PAPER_VALUE = 1.7547653506


def random_features(n=30, d=12, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def test_paper_worked_examples():
    assert vendi_score_kernel(K_A) == pytest.approx(PAPER_VALUE, abs=1e-9)
    assert vendi_score_kernel(np.eye(2), p=[0.25, 0.75]) == pytest.approx(PAPER_VALUE, abs=1e-9)
    assert vendi_score_kernel(K_A, p=[0.5, 1 / 6, 1 / 6, 1 / 6]) == pytest.approx(2.0, abs=1e-12)


@pytest.mark.parametrize("n, d", [(30, 12), (12, 30)])
def test_features_kernel_and_both_sides_agree(n, d):
    X = random_features(n, d)
    p = np.random.default_rng(1).dirichlet(np.ones(n))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    via_kernel = vendi_score_kernel(Xn @ Xn.T, p)
    items = vendi_score(X, p, side="items")
    feats = vendi_score(X, p, side="features")
    assert items == pytest.approx(via_kernel, rel=1e-10)
    assert feats == pytest.approx(via_kernel, rel=1e-10)
    assert vendi_score(X, p) == pytest.approx(via_kernel, rel=1e-10)


def test_uniform_p_equals_unweighted_score():
    X = random_features()
    n = X.shape[0]
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    unweighted = np.linalg.eigvalsh(Xn @ Xn.T / n)  # Friedman & Dieng's K/n definition
    unweighted = unweighted[unweighted > 0]
    expected = np.exp(-np.sum(unweighted * np.log(unweighted)))
    assert vendi_score(X, np.full(n, 1 / n)) == pytest.approx(expected, rel=1e-10)
    assert vendi_score(X) == pytest.approx(expected, rel=1e-10)


def test_duplicating_an_item_and_splitting_its_probability_leaves_vs_unchanged():
    X = random_features(10, 6)
    p = np.random.default_rng(2).dirichlet(np.ones(10))
    X_dup = np.vstack([X, X[3:4]])
    p_dup = np.append(p, p[3] * 0.3)
    p_dup[3] *= 0.7
    assert vendi_score(X_dup, p_dup) == pytest.approx(vendi_score(X, p), rel=1e-10)


def test_vs_non_increasing_in_q_and_bounded_by_n():
    X = random_features(20, 8)
    p = np.random.default_rng(3).dirichlet(np.ones(20))
    qs = [0.1, 0.5, 1.0, 2.0, 5.0, float("inf")]
    scores = [vendi_score(X, p, q=q) for q in qs]
    assert all(a >= b - 1e-12 for a, b in zip(scores, scores[1:]))
    assert scores[0] <= 20 + 1e-9
    assert scores[0] > scores[-1]


def test_identical_items_score_one_and_orthogonal_items_score_n():
    assert vendi_score(np.ones((5, 3))) == pytest.approx(1.0)
    assert vendi_score(np.eye(4)) == pytest.approx(4.0)
    assert vendi_score(np.eye(4), q=float("inf")) == pytest.approx(4.0)


def test_negative_similarities_are_fine():
    K = np.array([[1.0, -0.5], [-0.5, 1.0]])
    score = vendi_score_kernel(K)
    assert np.isfinite(score) and score == pytest.approx(np.exp(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25))))


@pytest.mark.parametrize(
    "features, p, message",
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), None, "NaN"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), None, "all zero"),
        (np.ones(5), None, "2-D"),
        (np.eye(3), [0.5, 0.5, 0.5], "sum to 1"),
        (np.eye(3), [0.5, 0.5], "shape"),
        (np.eye(3), [1.5, -0.5, 0.0], "non-negative"),
    ],
)
def test_bad_input_raises_clear_value_error(features, p, message):
    with pytest.raises(ValueError, match=message):
        vendi_score(features, p)


def test_bad_kernels_and_orders():
    with pytest.raises(ValueError, match="unit diagonal"):
        vendi_score_kernel(2 * np.eye(3))
    with pytest.raises(ValueError, match="symmetric"):
        vendi_score_kernel(np.array([[1.0, 0.2], [0.4, 1.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        vendi_score_kernel(np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]))
    with pytest.raises(ValueError, match="order q"):
        vendi_score(np.eye(3), q=0)


def test_normalise_rows_leaves_the_callers_array_alone():
    from core.diversity.vendi import normalise_rows

    X = np.array([[3.0, 4.0], [0.0, 2.0]])
    unit = normalise_rows(X)
    np.testing.assert_array_equal(X, [[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 1.0]], rtol=0, atol=1e-16)


def low_rank_unit_features(n=40, rank=5, seed=4):
    """(n, rank) rows L2-normalised: the cosine kernel F Fᵀ (n, n) has rank `rank`."""
    F = np.random.default_rng(seed).normal(size=(n, rank))
    return F / np.linalg.norm(F, axis=1, keepdims=True)


def renyi_score(eigenvalues, q):
    lam = eigenvalues / eigenvalues.sum()
    return np.sum(lam**q) ** (1 / (1 - q))


@pytest.mark.parametrize("uniform", [True, False])
def test_round_off_eigenvalues_of_a_low_rank_kernel_are_not_counted(uniform):
    """Rank 5, 40 items, q = 0.5: the 35 round-off eigenvalues (~1e-17, square roots ~3e-9) must not
    add to the score; it equals the score of the 5 nonzero eigenvalues (of the 5×5 Fᵀ diag(p) F)."""
    F = low_rank_unit_features()
    p = np.full(40, 1 / 40) if uniform else np.random.default_rng(5).dirichlet(np.ones(40))
    expected = renyi_score(np.linalg.eigvalsh(F.T @ (p[:, None] * F)), q=0.5)
    assert vendi_score_kernel(F @ F.T, p, q=0.5) == pytest.approx(expected, rel=1e-12)
    assert vendi_score(F, p, q=0.5, side="items") == pytest.approx(expected, rel=1e-12)
    assert vendi_score(F, p, q=0.5, side="features") == pytest.approx(expected, rel=1e-12)


def test_score_from_eigenvalues_drops_values_below_the_relative_tolerance():
    from core.diversity.vendi import score_from_eigenvalues

    lam = np.r_[np.full(4, 0.25), np.full(36, 1e-17)]  # below 40 · eps · 0.25 ≈ 2.2e-15
    assert score_from_eigenvalues(lam, q=0.5) == pytest.approx(4.0, rel=1e-14)
    assert score_from_eigenvalues(lam, q=1.0) == pytest.approx(4.0, rel=1e-14)
    kept = np.r_[np.full(4, 0.25), 1e-9]  # a genuine small eigenvalue is kept
    assert score_from_eigenvalues(kept, q=0.5) > 4.0 + 1e-5
