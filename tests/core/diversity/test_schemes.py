"""The weighting schemes: each returns a probability vector with the property it promises."""

import numpy as np
import pytest

from core.diversity.schemes import (SCHEMES, SchemeConfig, class_balanced_weights, compare_schemes,
                                    inverse_density_weights, knn_distances, leverage_weights,
                                    ridge_leverage_scores, scheme_summary, scheme_weights)
from core.diversity.vendi import vendi_score


def blobs(n=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) + 3.0


def assert_probabilities(p, n):
    assert p.shape == (n,) and p.dtype == np.float64
    assert np.all(p >= 0) and np.isclose(p.sum(), 1.0, atol=1e-12)


def test_class_balanced_gives_every_class_equal_mass():
    labels = np.array([0] * 50 + [1] * 10 + [7] * 3)
    p = class_balanced_weights(labels)
    assert_probabilities(p, len(labels))
    masses = [p[labels == c].sum() for c in (0, 1, 7)]
    np.testing.assert_allclose(masses, [1 / 3] * 3, rtol=1e-12)
    assert np.ptp(p[labels == 1]) == 0  # uniform within a class


def test_class_balanced_needs_labels():
    with pytest.raises(ValueError, match="needs labels"):
        scheme_weights(SchemeConfig("class-balanced"), features=blobs(), labels=None)


def test_inverse_density_a_point_repeated_20_times_gets_less_than_a_lone_point():
    rng = np.random.default_rng(1)
    lone = rng.normal(size=(30, 8))
    copies = np.repeat(rng.normal(size=(1, 8)), 20, axis=0)
    features = np.concatenate([lone, copies])
    p = inverse_density_weights(features, k=5)
    assert_probabilities(p, 50)
    assert p[30:].max() < p[:30].min()  # every copy below every lone point
    assert p[30:].sum() < 20 / 50  # the clump loses mass against uniform


def test_knn_distances_match_brute_force_and_blocking_does_not_matter():
    X = blobs(37, 4)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    full = np.linalg.norm(unit[:, None] - unit[None], axis=2)
    np.fill_diagonal(full, np.inf)
    expected = np.sort(full, axis=1)[:, :3]
    np.testing.assert_allclose(knn_distances(X, k=3, block_size=5), expected, atol=1e-7)
    np.testing.assert_allclose(knn_distances(X, k=3, block_size=5), knn_distances(X, k=3, block_size=1000))
    with pytest.raises(ValueError, match="k must lie"):
        knn_distances(X, k=37)


def test_leverage_sums_to_one_and_matches_a_direct_computation():
    for n, d in ((40, 6), (8, 30)):  # the d×d side and the n×n side
        X = blobs(n, d, seed=n)
        p = leverage_weights(X, ridge=0.01)
        assert_probabilities(p, n)
        unit = X / np.linalg.norm(X, axis=1, keepdims=True)
        hat = unit @ np.linalg.inv(unit.T @ unit + 0.01 * n * np.eye(d)) @ unit.T  # direct, n×n
        tau = np.diag(hat)
        np.testing.assert_allclose(ridge_leverage_scores(X, 0.01), tau, rtol=1e-9)
        np.testing.assert_allclose(p, tau / tau.sum(), rtol=1e-9)


def test_leverage_favours_a_direction_few_rows_span():
    rng = np.random.default_rng(2)
    common = np.c_[rng.normal(size=(50, 3)) * 0.1 + [1, 0, 0], np.zeros((50, 1))]
    rare = np.array([[0.0, 0.0, 0.0, 1.0]])
    p = leverage_weights(np.concatenate([common, rare]), ridge=1e-3)
    assert p.argmax() == 50


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_scheme_returns_a_valid_probability_vector(scheme):
    X, labels = blobs(), np.arange(60) % 3
    result = scheme_weights(SchemeConfig(scheme, k=4), features=X, labels=labels)
    assert result.scheme == scheme and result.label
    assert_probabilities(result.p, 60)


def test_diversity_scheme_delegates_to_the_engine():
    X = blobs()
    calls = []

    def engine(features):
        from core.diversity.weights import optimise_weights

        calls.append(features.shape)
        return optimise_weights(features, gamma=1.0, steps=20)

    result = scheme_weights(SchemeConfig("diversity", gamma=1.0), features=X, diversity=engine)
    assert calls == [X.shape] and result.label == "gamma=1"
    assert vendi_score(X, result.p) > vendi_score(X)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="unknown weighting scheme"):
        SchemeConfig("magic").validate()
    with pytest.raises(ValueError, match="ridge"):
        SchemeConfig("leverage", ridge=0).validate()
    with pytest.raises(ValueError, match="needs features"):
        scheme_weights(SchemeConfig("leverage"), labels=np.arange(5))


def test_summary_side_by_side():
    X, labels = blobs(), np.array([0] * 40 + [1] * 20)
    uniform = np.full(60, 1 / 60)
    rows = compare_schemes({"uniform": uniform, "class-balanced": class_balanced_weights(labels)}, X, labels)
    assert [r["scheme"] for r in rows] == ["uniform", "class-balanced"]
    assert np.isclose(rows[0]["entropy"], np.log(60)) and np.isclose(rows[0]["ess"], 60)
    assert np.isclose(rows[0]["vs"], vendi_score(X))
    assert rows[1]["class_mass"] == pytest.approx({0: 0.5, 1: 0.5})
    assert rows[1]["max_relative"] == pytest.approx(60 * 0.5 / 20)
    assert scheme_summary(uniform)["vs"] is None


def test_cli_writes_each_scheme_and_refuses_missing_labels(tmp_path, data_root, capsys):
    from core.cli import main

    X, labels = blobs(30, 4), np.array([0] * 20 + [1] * 10)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", labels)
    out = tmp_path / "p.npy"
    assert main(["weights", str(tmp_path / "x.npy"), "--scheme", "class-balanced", "--labels", str(tmp_path / "y.npy"),
                 "--out", str(out)]) == 0
    np.testing.assert_allclose(np.load(out), class_balanced_weights(labels))
    assert "class 1: mass 0.5000" in capsys.readouterr().out
    assert main(["weights", str(tmp_path / "x.npy"), "--scheme", "leverage", "--out", str(out)]) == 0
    np.testing.assert_allclose(np.load(out), leverage_weights(X))
    out.unlink()
    assert main(["weights", str(tmp_path / "x.npy"), "--scheme", "class-balanced", "--out", str(out)]) == 2
    assert "needs --labels" in capsys.readouterr().err and not out.exists()


def test_workbench_compares_every_scheme_on_one_dataset(data_root):
    from core.workbench import Workbench

    X, labels = blobs(40, 4), np.array([0] * 30 + [1] * 10)
    configs = [SchemeConfig(s, k=3) for s in SCHEMES]
    rows = Workbench(data_root).compare_schemes(X, labels, configs)
    assert [r["scheme"] for r in rows] == list(SCHEMES)
    for row in rows:
        assert_probabilities(row["p"], 40)
        assert row["vs"] == pytest.approx(vendi_score(X, row["p"]))
        assert sum(row["class_mass"].values()) == pytest.approx(1.0)
    by_scheme = {r["scheme"]: r for r in rows}
    assert by_scheme["class-balanced"]["class_mass"] == pytest.approx({0: 0.5, 1: 0.5})
    assert by_scheme["diversity"]["vs"] > by_scheme["uniform"]["vs"]
    unlabelled = Workbench(data_root).compare_schemes(X, None, configs)  # class-balanced needs labels: left out
    assert [r["scheme"] for r in unlabelled] == [s for s in SCHEMES if s != "class-balanced"]


def test_inverse_density_on_fewer_points_than_k_uses_all_of_them():
    result = scheme_weights(SchemeConfig("inverse-density", k=10), features=blobs(6, 3))
    assert result.label == "inverse-density k=5"
    np.testing.assert_allclose(result.p, inverse_density_weights(blobs(6, 3), k=5))


def test_a_scheme_exports_like_diversity_weights(data_root):
    from core.data.datasets import DatasetSpec
    from core.diversity.export import load_exported_weights
    from core.workbench import Workbench

    wb = Workbench(data_root)
    dataset = wb.load(DatasetSpec("digits", (0, 1), 20))
    result = wb.scheme_weights(None, dataset.labels, SchemeConfig("class-balanced"), n=len(dataset))
    files = wb.export_scheme(dataset, "pixels", result)
    np.testing.assert_allclose(load_exported_weights(files.npy), result.p)
    assert "class-balanced" in files.npy.name and files.csv.read_text().startswith("index,id,label,label_id,weight,p")
    assert '"scheme": "class-balanced"' in files.json.read_text()
