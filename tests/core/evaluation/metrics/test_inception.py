import numpy as np
import pytest

from core.evaluation.metrics.inception import (
    fit_probe,
    inception_score,
    inception_score_from_probs,
    probe_probabilities,
    zero_shot_probabilities,
)


@pytest.mark.parametrize("n_classes", [2, 10])
def test_confident_uniformly_spread_predictions_give_log_classes(n_classes):
    probs = np.eye(n_classes)[np.arange(50 * n_classes) % n_classes]
    assert inception_score_from_probs(probs) == pytest.approx(np.log(n_classes), rel=1e-12)


def test_identical_predictions_give_zero():
    probs = np.tile([0.2, 0.5, 0.3], (40, 1))
    assert inception_score_from_probs(probs) == pytest.approx(0.0, abs=1e-12)


def test_collapse_to_one_confident_class_gives_zero():
    assert inception_score_from_probs(np.tile([0.0, 1.0, 0.0], (10, 1))) == pytest.approx(0.0, abs=1e-12)


def test_score_is_the_mean_kl_to_the_marginal():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=30)
    marginal = probs.mean(0)
    mean_kl = np.mean([(p * np.log(p / marginal)).sum() for p in probs])
    assert inception_score_from_probs(probs) == pytest.approx(mean_kl, rel=1e-10)


def _two_blobs(seed=0, n=100):
    rng = np.random.default_rng(seed)
    features = np.vstack([rng.normal(-3, 1, (n, 5)), rng.normal(3, 1, (n, 5))])
    labels = np.repeat([4, 9], n)
    return features, labels


def test_probe_separates_blobs_and_is_cached_without_pickle(tmp_path):
    features, labels = _two_blobs()
    coef, intercept, classes = fit_probe(features, labels, cache_dir=tmp_path)
    assert list(classes) == [4, 9] and coef.shape == (2, 5)
    predicted = classes[probe_probabilities(features, coef, intercept).argmax(1)]
    assert (predicted == labels).mean() > 0.98
    (cached,) = tmp_path.glob("probe_*.npz")
    np.load(cached, allow_pickle=False).close()  # plain arrays only
    again = fit_probe(features, labels, cache_dir=tmp_path)
    np.testing.assert_array_equal(again[0], coef)


def test_inception_score_with_the_probe_records_its_source():
    features, labels = _two_blobs()
    result = inception_score(features, features, labels)
    assert result.source == "classifier:logreg" and result.n_classes == 2
    assert result.score == pytest.approx(np.log(2), rel=0.05)


def test_inception_score_takes_real_then_generated():
    """Labelled real set (200 rows, two modes) first, a generated set of one mode (100 rows) second."""
    features_real, labels_real = _two_blobs()
    one_mode = inception_score(features_real, features_real[:100], labels_real)
    assert one_mode.score < 0.05
    both_modes = inception_score(features_real, features_real[::2], labels_real)
    assert both_modes.score == pytest.approx(np.log(2), rel=0.05)


def test_unloadable_clip_falls_back_to_the_probe():
    features, labels = _two_blobs()
    result = inception_score(features, features, labels, class_names=["a", "b"], clip=("no-such-model", "none"))
    assert result.source == "classifier:logreg"


def test_zero_shot_picks_the_closest_prompt():
    text = np.array([[1.0, 0.0], [0.0, 1.0]])
    images = np.array([[0.9, 0.1], [0.2, 0.8]])
    probs = zero_shot_probabilities(images, text)
    assert probs.argmax(1).tolist() == [0, 1]
    np.testing.assert_allclose(probs.sum(1), 1.0)


def test_without_clip_or_labels_it_says_what_is_missing():
    with pytest.raises(ValueError, match="labelled real data"):
        inception_score(None, np.zeros((4, 2)))


def _probs_with_bad_row(kind):
    probs = np.tile([0.2, 0.5, 0.3], (6, 1))
    if kind == "nan":
        probs[2, 1] = np.nan
    elif kind == "zero":
        probs[2] = 0.0
    elif kind == "unnormalised":
        probs[2] = [0.2, 0.5, 0.31]  # sums to 1.01: not silently renormalised any more
    elif kind == "negative":
        probs[2] = [1.2, -0.2, 0.0]
    return probs


@pytest.mark.parametrize(
    "kind, message",
    [("nan", "NaN"), ("zero", "sum to 1"), ("unnormalised", "sum to 1"), ("negative", "non-negative")],
)
def test_bad_probability_rows_are_refused(as_input, kind, message):
    with pytest.raises(ValueError, match=message):
        inception_score_from_probs(as_input(_probs_with_bad_row(kind)))


@pytest.mark.parametrize("shape", [(0, 3), (4, 0), (0, 0)])
def test_empty_probabilities_are_refused(as_input, shape):
    with pytest.raises(ValueError, match="empty"):
        inception_score_from_probs(as_input(np.zeros(shape)))


def test_rows_summing_to_one_within_the_tolerance_are_accepted(as_input):
    probs = np.tile([0.2, 0.5, 0.3], (6, 1))
    probs[0] += [5e-7, 0.0, 0.0]
    assert inception_score_from_probs(as_input(probs)) == pytest.approx(0.0, abs=1e-6)


def test_the_probe_path_refuses_empty_or_non_finite_generated_features(as_input):
    features, labels = _two_blobs()
    with pytest.raises(ValueError, match="empty"):
        inception_score(features, as_input(np.zeros((0, 5))), labels)
    bad = features[:10].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        inception_score(features, as_input(bad), labels)
