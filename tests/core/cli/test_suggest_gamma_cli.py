"""`python -m core suggest-gamma` and `python -m core weights --gamma auto`."""

import numpy as np
import pytest

from core.cli import main
from core.diversity.suggest import suggest_gamma
from core.diversity.weights import WeightsConfig


@pytest.fixture
def features(tmp_path, data_root):
    from sklearn.datasets import load_digits

    path = tmp_path / "features.npy"
    np.save(path, load_digits().data[:150] + 0.5)
    return path


def test_suggest_gamma_prints_the_table_it_searched(features, capsys):
    assert main(["suggest-gamma", str(features), "--min-ess", "0.5", "--steps", "20"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["gamma", "ESS", "ESS"]
    chosen = [line for line in lines if "<- chosen" in line]
    expected = suggest_gamma(np.load(features), 0.5, config=WeightsConfig(steps=20))
    assert len(chosen) == 1 and float(chosen[0].split()[0]) == pytest.approx(expected.gamma, abs=1e-4)
    assert lines[-1].startswith(f"suggested gamma {expected.gamma:.4f}")
    assert sum(" computed" in line for line in lines[1:-1]) <= 4


def test_weights_gamma_auto_writes_the_chosen_weights(features, tmp_path, capsys):
    out = tmp_path / "p.npy"
    assert main(["weights", str(features), "--gamma", "auto", "--max-ratio", "4", "--steps", "20",
                 "--out", str(out)]) == 0
    p = np.load(out, allow_pickle=False)
    assert p.shape == (150,) and p.sum() == pytest.approx(1.0) and p.max() * 150 <= 4 + 1e-9
    text = capsys.readouterr().out
    expected = suggest_gamma(np.load(features), None, 4.0, config=WeightsConfig(steps=20))
    assert f"chosen gamma {expected.gamma:.4f}" in text and "ESS" in text
    np.testing.assert_allclose(p, expected.result.p, rtol=1e-12)


@pytest.mark.parametrize("argv, words", [
    (["suggest-gamma", "{f}", "--min-ess", "2"], "minimum ESS fraction"),
    (["suggest-gamma", "{f}", "--max-ratio", "0.5"], "maximum weight ratio"),
    (["weights", "{f}", "--gamma", "0.8", "--min-ess", "0.3", "--out", "{o}"], "go with --gamma auto"),
    (["weights", "{f}", "--gamma", "auto", "--scheme", "uniform", "--out", "{o}"], "give a number"),
])
def test_bad_input_is_one_line_and_writes_nothing(features, tmp_path, capsys, argv, words):
    out = tmp_path / "p.npy"
    assert main([a.format(f=features, o=out) for a in argv]) == 2
    assert words in capsys.readouterr().err and not out.exists()


def test_gamma_must_be_a_number_or_auto(features, tmp_path):
    with pytest.raises(SystemExit):
        main(["weights", str(features), "--gamma", "lots", "--out", str(tmp_path / "p.npy")])
