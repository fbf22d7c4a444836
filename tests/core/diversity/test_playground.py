"""The Learn tab's maths: the paper's worked example, kernel checks, the toy mixture, random Fourier
features against the exact kernel, and the stepped Algorithm 1 against `optimise_weights`."""

import numpy as np
import pytest

from core.diversity import playground as pg
from core.diversity.vendi import vendi_score_kernel
from core.diversity.weights import WeightsConfig, optimise_weights


def test_paper_example_values():
    # eq. 2–4: uniform p -> exp(H(1/4, 3/4)) = 1.7547…; p = (1/2, 1/6, 1/6, 1/6) -> exactly 2
    expected = np.exp(-(0.25 * np.log(0.25) + 0.75 * np.log(0.75)))
    assert pg.kernel_score(pg.PAPER_K) == pytest.approx(expected, rel=1e-12)
    assert pg.kernel_score(pg.PAPER_K) == pytest.approx(1.7547653506, abs=1e-9)
    assert pg.kernel_score(pg.PAPER_K, pg.PAPER_P_BALANCED) == pytest.approx(2.0, abs=1e-12)
    assert pg.kernel_score(pg.PAPER_K) == pytest.approx(vendi_score_kernel(pg.PAPER_K), rel=1e-12)


def test_spectrum_sums_to_one_and_two_item_reduction_agrees():
    lam = pg.kernel_spectrum(pg.PAPER_K)
    np.testing.assert_allclose(lam, [0.75, 0.25, 0.0, 0.0], atol=1e-12)
    K2, p2, groups = pg.merge_duplicates(pg.PAPER_K)
    np.testing.assert_array_equal(K2, np.eye(2))
    np.testing.assert_allclose(p2, [0.25, 0.75])
    assert groups == [[0], [1, 2, 3]]
    assert pg.kernel_score(K2, p2) == pytest.approx(pg.kernel_score(pg.PAPER_K), rel=1e-12)


def test_algorithm_1_on_the_example_moves_to_the_balanced_solution():
    F = pg.kernel_features(pg.PAPER_K)
    np.testing.assert_allclose(F @ F.T, pg.PAPER_K, atol=1e-12)
    result = optimise_weights(F, gamma=1.0)
    np.testing.assert_allclose(result.p, pg.PAPER_P_BALANCED, atol=5e-3)
    assert result.vs_final == pytest.approx(2.0, abs=1e-4)


@pytest.mark.parametrize("K, words", [
    ([[1, 0.5], [0.4, 1]], "Not symmetric"),
    ([[1, 0.2], [0.2, 0.9]], "diagonal must be 1"),
    ([[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]], "impossible together"),
    ([[1, 0], [0, 1], [0, 0]], "square"),
    ([[1, np.nan], [np.nan, 1]], "finite"),
])
def test_invalid_similarity_gets_a_plain_message(K, words):
    problems = pg.kernel_problems(K)
    assert problems and words in " ".join(problems)
    with pytest.raises(ValueError, match=words):
        pg.kernel_score(K)


def test_valid_similarity_has_no_problems():
    assert pg.kernel_problems(pg.PAPER_K) == []
    assert pg.kernel_problems(np.eye(3)) == []


def test_mixture_counts_and_bad_settings():
    points, modes = pg.toy_mixture(pg.MixtureConfig(modes=3, majority=0.8, n=200))
    assert points.shape == (200, 2) and np.bincount(modes).tolist() == [160, 20, 20]
    for bad in (dict(modes=1), dict(majority=1.0), dict(majority=0.2), dict(n=5000), dict(spread=0)):
        with pytest.raises(ValueError):
            pg.toy_mixture(pg.MixtureConfig(**bad))


def test_random_fourier_features_approximate_the_rbf_kernel():
    points, _ = pg.toy_mixture(pg.MixtureConfig(n=300))
    Z = pg.random_fourier_features(points, 0.5, n_frequencies=2048)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-12)  # the kernel's unit diagonal
    check = pg.rff_check(points, Z, 0.5)
    assert check.max_entry_error < 0.12  # ~ 1/√m per entry
    assert check.relative_error < 0.03
    # the error shrinks with more frequencies (here: 16× more, expected ~4× smaller per entry)
    coarse = pg.rff_check(points, pg.random_fourier_features(points, 0.5, n_frequencies=128), 0.5)
    assert coarse.max_entry_error > 2 * check.max_entry_error


def test_diversity_weights_raise_the_minority_modes_mass():
    points, modes = pg.toy_mixture(pg.MixtureConfig(majority=0.9, n=400))
    Z = pg.random_fourier_features(points, 0.5)
    p = optimise_weights(Z, gamma=0.8).p
    frame = pg.snapshot(Z, modes, p)
    np.testing.assert_allclose(frame.mode_mass_uniform, [0.9, 0.1])
    assert frame.mode_mass[1] > 0.25  # from 10% to well over a quarter
    assert frame.vs > pg.snapshot(Z, modes, np.full(400, 1 / 400)).vs


def test_stepper_equals_optimise_weights():
    points, modes = pg.toy_mixture(pg.MixtureConfig(n=120))
    Z = pg.random_fourier_features(points, 0.7, n_frequencies=64)
    config = WeightsConfig(gamma=0.9, steps=40)
    stepper = pg.Stepper(Z, config)
    while not stepper.done:
        row = stepper.step(7)
    reference = optimise_weights(Z, gamma=0.9, steps=40)
    np.testing.assert_allclose(stepper.p, reference.p, rtol=1e-12)
    assert row == reference.history[-1] and stepper.step_count == 40
    assert stepper.step(5) == row  # never past the last step
