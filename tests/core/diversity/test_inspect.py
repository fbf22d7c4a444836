import numpy as np
import pytest

from core.diversity import inspect as ins


def test_top_bottom_order_and_ties():
    p = np.array([0.1, 0.4, 0.1, 0.3, 0.1])
    top, bottom = ins.top_bottom_indices(p, k=2)
    assert top.tolist() == [1, 3]
    assert bottom.tolist() == [0, 2]  # ties broken by index
    top, bottom = ins.top_bottom_indices(p, k=99)  # k larger than n is clipped
    assert len(top) == len(bottom) == 5


def test_ess_uniform_and_point_mass():
    n = 50
    assert ins.effective_sample_size(np.full(n, 1 / n)) == pytest.approx(n)
    point = np.zeros(n)
    point[3] = 1.0
    assert ins.effective_sample_size(point) == pytest.approx(1.0)
    assert ins.max_min_ratio(point) == float("inf")
    assert ins.max_min_ratio(np.full(n, 1 / n)) == pytest.approx(1.0)


def test_expected_repeats_matches_simulation():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(30) * 0.5)
    batch = 16
    draws = rng.choice(30, size=(20000, batch), p=p)
    simulated = np.mean([batch - len(set(row)) for row in draws])
    assert ins.expected_repeats(p, batch) == pytest.approx(simulated, abs=0.05)
    # more concentrated weights repeat more than uniform ones
    assert ins.expected_repeats(p, batch) > ins.expected_repeats(np.full(30, 1 / 30), batch)


def test_histogram_counts_everything_in_relative_units():
    p = np.random.default_rng(1).dirichlet(np.ones(100))
    counts, edges = ins.weight_histogram(p, bins=10)
    assert counts.sum() == 100
    assert edges[0] == pytest.approx(p.min() * 100) and edges[-1] == pytest.approx(p.max() * 100)
    counts, edges = ins.weight_histogram(np.full(8, 1 / 8))  # degenerate: all equal
    assert counts.sum() == 8 and edges[0] < 1.0 < edges[-1]
    counts, edges = ins.weight_histogram(np.full(8, 1 / 8), log2=True)  # uniform sits at log2(1) = 0
    assert counts.sum() == 8 and edges[0] < 0.0 < edges[-1]
    p = np.array([0.0, 0.25, 0.75])  # a zero weight still lands in the lowest bin
    counts, edges = ins.weight_histogram(p, bins=4, log2=True)
    assert counts.sum() == 3 and edges[0] == pytest.approx(-30) and edges[-1] == pytest.approx(np.log2(2.25))


def test_class_mass_uniform_vs_weighted():
    labels = np.array([0, 0, 0, 1])
    p = np.array([0.1, 0.1, 0.1, 0.7])
    mass = ins.class_mass(p, labels)
    assert mass.classes.tolist() == [0, 1]
    np.testing.assert_allclose(mass.uniform, [0.75, 0.25])
    np.testing.assert_allclose(mass.weighted, [0.3, 0.7])
    with pytest.raises(ValueError):
        ins.class_mass(p, labels[:3])


@pytest.mark.parametrize("bad", [np.array([0.5, 0.6]), np.array([-0.1, 1.1]), np.array([np.nan, 1.0]), np.ones((2, 2)) / 4])
def test_bad_probabilities_are_refused(bad):
    with pytest.raises(ValueError):
        ins.effective_sample_size(bad)


def test_summary_keys():
    summary = ins.weight_summary(np.full(10, 0.1), batch_size=4)
    assert summary["ess"] == pytest.approx(10)
    assert summary["expected_repeats"] == pytest.approx(summary["expected_repeats_uniform"])


def test_histogram_members_partition_the_examples_and_read_back_as_ranges():
    import numpy as np

    from core.diversity.inspect import histogram_members, index_ranges, weight_histogram

    p = np.random.default_rng(0).dirichlet(np.ones(50))
    counts, edges = weight_histogram(p, bins=7, log2=True)
    members = histogram_members(p, edges)
    assert [len(m) for m in members] == counts.tolist()  # the same bins as the histogram
    assert sorted(np.concatenate(members).tolist()) == list(range(50))
    assert index_ranges([200, 3, 17, 201, 202]) == "3, 17, 200-202" and index_ranges([]) == ""
