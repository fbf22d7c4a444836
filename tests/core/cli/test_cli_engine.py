"""`python -m core vendi` and `python -m core weights`: output, progress table, and bad input."""

import subprocess
import sys

import numpy as np
import pytest

from core.cli import main
from core.diversity.vendi import vendi_score
from core.diversity.weights import optimise_weights

ROOT = __import__("pathlib").Path(__file__).resolve().parents[3]


@pytest.fixture
def features(tmp_path):
    path = tmp_path / "features.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, size=(40, 12), dtype=np.uint8))
    return path


def test_weights_writes_float64_probabilities_and_prints_progress(features, tmp_path, capsys):
    out = tmp_path / "p.npy"
    assert main(["weights", str(features), "--gamma", "0.8", "--steps", "20", "--out", str(out)]) == 0
    p = np.load(out, allow_pickle=False)
    assert p.dtype == np.float64 and p.shape == (40,) and p.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(p, optimise_weights(np.load(features), gamma=0.8, steps=20).p, rtol=1e-12)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["step", "VS", "entropy", "ESS"]
    assert [line.split()[0] for line in lines[1:4]] == ["1", "10", "20"]
    assert lines[-1] == f"final VS {vendi_score(np.load(features), p):.4f}"


def test_vendi_prints_weighted_and_uniform_scores(features, tmp_path, capsys):
    p = np.random.default_rng(1).dirichlet(np.ones(40))
    np.save(tmp_path / "p.npy", p)
    assert main(["vendi", str(features), "--weights", str(tmp_path / "p.npy")]) == 0
    assert main(["vendi", str(features), "--q", "inf"]) == 0
    weighted, order_inf = capsys.readouterr().out.split()
    assert float(weighted) == pytest.approx(vendi_score(np.load(features), p), abs=1e-6)
    assert float(order_inf) == pytest.approx(vendi_score(np.load(features), q=float("inf")), abs=1e-6)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.ones((5, 2, 2)), "2-D"),
        (np.ones((1, 4)), "at least 2"),
        (np.array([[1.0, np.nan], [1.0, 0.0]]), "NaN"),
        (np.array([[1.0, 2.0], [0.0, 0.0]]), "all zero"),
        (np.array([["a", "b"], ["c", "d"]]), "numeric"),
    ],
)
def test_bad_features_exit_2_with_one_line_and_write_nothing(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    out = tmp_path / "p.npy"
    result = subprocess.run([sys.executable, "-m", "core", "weights", str(tmp_path / "bad.npy"), "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not out.exists()


def test_existing_output_survives_bad_input(tmp_path, capsys):
    out = tmp_path / "p.npy"
    np.save(out, np.array([0.5, 0.5]))
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY not really")
    assert main(["weights", str(tmp_path / "broken.npy"), "--out", str(out)]) == 2
    assert main(["weights", str(tmp_path / "missing.npy"), "--out", str(out)]) == 2
    np.testing.assert_array_equal(np.load(out), [0.5, 0.5])
    assert "error:" in capsys.readouterr().err


def test_pickled_object_arrays_are_refused(tmp_path, capsys):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert main(["vendi", str(tmp_path / "objects.npy")]) == 2
    assert "not a plain numeric" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the answer where CUDA is absent")
def test_cuda_without_a_gpu_is_one_line_and_no_table(features, tmp_path, capsys):
    out = tmp_path / "p.npy"
    assert main(["weights", str(features), "--device", "cuda", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == "error: device 'cuda' was asked for but no CUDA GPU is available here"
    assert not out.exists()


def test_a_full_disk_is_one_line_and_keeps_the_old_output(features, tmp_path, capsys, monkeypatch):
    import errno

    from core.data import storage

    out = tmp_path / "p.npy"
    np.save(out, np.array([0.5, 0.5]))

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "atomic_write_bytes", full)
    assert main(["weights", str(features), "--gamma", "0.8", "--steps", "5", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: The disk holding") and "is full" in err[0]
    np.testing.assert_array_equal(np.load(out), [0.5, 0.5])
