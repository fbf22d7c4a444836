import numpy as np
import pytest

from core.evaluation.metrics.prc import knn_radii, manifold_coverage, precision_recall


def test_tight_generated_cluster_inside_wide_real_set_has_high_precision_low_recall():
    rng = np.random.default_rng(0)
    features_real = rng.normal(0, 1.0, size=(1000, 2))
    features_gen = rng.normal(0, 0.05, size=(500, 2))
    result = precision_recall(features_real, features_gen)
    assert result.precision > 0.95
    assert result.recall < 0.1


def test_swapping_the_arguments_swaps_precision_and_recall():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1.0, (300, 3)), rng.normal(0.5, 0.3, (300, 3))
    forward, backward = precision_recall(a, b), precision_recall(b, a)
    assert forward.precision == backward.recall and forward.recall == backward.precision
    assert forward.precision != forward.recall


def test_identical_sets_have_full_precision_and_recall():
    x = np.random.default_rng(2).normal(size=(200, 4))
    assert precision_recall(x, x) == (1.0, 1.0)


def test_disjoint_sets_have_zero_precision_and_recall():
    rng = np.random.default_rng(3)
    assert precision_recall(rng.normal(0, 1, (200, 2)), rng.normal(100, 1, (200, 2))) == (0.0, 0.0)


def test_manifold_coverage_takes_the_reference_set_first():
    """A tight query cluster (40 rows) inside a wide reference set (300 rows) is covered; the wide set
    is not covered by the tight one's manifold."""
    rng = np.random.default_rng(5)
    wide, tight = rng.normal(0, 1.0, (300, 2)), rng.normal(0, 0.05, (40, 2))
    assert manifold_coverage(wide, knn_radii(wide), tight) == 1.0
    assert manifold_coverage(tight, knn_radii(tight), wide) < 0.1


def test_knn_radius_excludes_the_point_itself():
    points = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    np.testing.assert_allclose(knn_radii(points, k=1), [1, 1, 2, 3, 4])
    np.testing.assert_allclose(knn_radii(points, k=3), [6, 5, 3, 5, 9])


@pytest.mark.parametrize("batch_size", [1, 7, 64, 10_000])
def test_results_do_not_depend_on_batch_size(batch_size):
    rng = np.random.default_rng(4)
    real, gen = rng.normal(0, 1, (150, 5)), rng.normal(0.3, 0.8, (120, 5))
    assert precision_recall(real, gen, batch_size=batch_size) == precision_recall(real, gen, batch_size=150)


def test_too_few_samples_are_refused():
    with pytest.raises(ValueError, match="more than 3"):
        precision_recall(np.zeros((3, 2)), np.zeros((10, 2)))


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_refused(as_input, k):
    rng = np.random.default_rng(6)
    real, gen = as_input(rng.normal(size=(20, 2))), as_input(rng.normal(size=(20, 2)))
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(real, gen, k=k)


@pytest.mark.parametrize("batch_size", [0, -4])
def test_batch_size_below_one_is_refused(as_input, batch_size):
    rng = np.random.default_rng(7)
    real, gen = as_input(rng.normal(size=(20, 2))), as_input(rng.normal(size=(20, 2)))
    with pytest.raises(ValueError, match="batch_size must be"):
        precision_recall(real, gen, batch_size=batch_size)
