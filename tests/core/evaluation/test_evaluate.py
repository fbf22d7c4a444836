import numpy as np
import pytest

from core.data.datasets import load_dataset
from core.evaluation.evaluate import (
    METRICS,
    EvalConfig,
    evaluate_samples,
    generate_images,
    mean_ci,
    metrics_from_features,
    nearest_real,
)

SMALL = EvalConfig(kid_subsets=5, kid_subset_size=100)


@pytest.fixture(scope="module")
def digits01():
    return load_dataset("digits", classes=(0, 1), per_class=60, seed=0)


def test_every_metric_is_reported_with_its_embedder(digits01, tmp_path):
    gen = digits01.images[::-1].copy()  # the data itself, reordered: a perfect "generator"
    p = np.full(len(digits01), 1.0 / len(digits01))
    result = evaluate_samples(gen, digits01, p=p, config=SMALL, cache_dir=tmp_path)
    assert set(METRICS) <= set(result)
    assert result["embedder"] == "pixels" and result["is_source"] == "classifier:logreg"
    assert result["fid"] == pytest.approx(0.0, abs=1e-8)
    assert result["wfid"] == pytest.approx(result["fid"], abs=1e-8)
    assert result["precision"] == result["recall"] == 1.0
    assert result["is"] == pytest.approx(np.log(2), rel=0.1)


def test_a_collapsed_generator_scores_worse_on_every_axis(digits01, tmp_path):
    zeros_only = np.repeat(digits01.images[digits01.labels == 0][:5], 12, axis=0)
    good = evaluate_samples(digits01.images, digits01, config=SMALL, cache_dir=tmp_path)
    bad = evaluate_samples(zeros_only, digits01, config=SMALL, cache_dir=tmp_path)
    assert bad["fid"] > good["fid"] + 0.01 and bad["kid"] > good["kid"]
    assert bad["recall"] < 0.5 and bad["vs"] < good["vs"] and bad["is"] < 0.1


def test_weights_change_only_the_weighted_fid():
    rng = np.random.default_rng(0)
    real, gen = rng.normal(size=(80, 4)), rng.normal(0.3, 1, size=(60, 4))
    p = rng.dirichlet(np.ones(80))
    plain = metrics_from_features(real, gen, None, config=SMALL)
    weighted = metrics_from_features(real, gen, p, config=SMALL)
    assert plain["wfid"] is None and weighted["wfid"] != weighted["fid"]
    assert {k: v for k, v in plain.items() if k != "wfid"} == {k: v for k, v in weighted.items() if k != "wfid"}
    assert plain["is"] is None and plain["is_source"].startswith("unavailable")


def test_batch_size_does_not_change_generated_samples():
    import torch

    from core.training.networks import Generator

    torch.manual_seed(0)
    generator = Generator((1, 8, 8))
    one = generate_images(generator, 10, seed=3, batch_size=3)
    assert one.shape == (10, 8, 8, 1) and one.dtype == np.uint8
    np.testing.assert_array_equal(one, generate_images(generator, 10, seed=3, batch_size=10))


def test_results_do_not_depend_on_batch_size(digits01, tmp_path):
    gen = digits01.images[:50]
    small = evaluate_samples(gen, digits01, config=EvalConfig(**{**SMALL.__dict__, "batch_size": 7}), cache_dir=tmp_path)
    large = evaluate_samples(gen, digits01, config=SMALL, cache_dir=tmp_path)
    assert {k: v for k, v in small.items() if k != "config"} == {k: v for k, v in large.items() if k != "config"}


def test_mismatched_image_shapes_and_unusable_embedders_are_refused(digits01):
    with pytest.raises(ValueError, match="generated images"):
        evaluate_samples(np.zeros((5, 28, 28, 1), np.uint8), digits01, config=SMALL)
    with pytest.raises(ValueError, match="precomputed"):
        evaluate_samples(digits01.images, digits01, embedder="precomputed", config=SMALL)


def test_mean_ci_uses_student_t():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302652729 * 1.0 / np.sqrt(3))
    assert mean_ci([5.0]) == (5.0, 0.0)
    assert np.isnan(mean_ci([None])[0])


def test_nearest_real_uses_cosine_similarity():
    real = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    gen = np.array([[2.0, 0.1], [0.1, 3.0], [0.2, 5.0], [1.0, 0.9]])
    assert nearest_real(real, gen).tolist() == [0, 1, 1, 2]


def test_nearest_real_takes_real_then_generated_and_indexes_the_real_set():
    real = np.random.default_rng(0).normal(size=(7, 4))
    gen = 3.0 * real[[5, 0]]  # two generated rows, copies of real rows 5 and 0 up to scale
    nearest = nearest_real(real, gen)
    assert nearest.shape == (2,) and nearest.tolist() == [5, 0]




def test_evaluate_cli_refuses_bad_input_then_scores_a_run(trained_run, data_root, capsys):
    import json

    from core.cli import main

    assert main(["evaluate", "missing-run"]) == 2
    np.save(data_root / "short.npy", np.full(7, 1 / 7))
    assert main(["evaluate", "base", "--n-samples", "20", "--weights", "short.npy"]) == 2
    assert main(["evaluate", "base", "--n-samples", "0"]) == 2
    if not __import__("torch").cuda.is_available():
        assert main(["evaluate", "base", "--n-samples", "20", "--device", "cuda"]) == 2
    assert not (trained_run / "eval.json").exists()
    captured = capsys.readouterr()
    assert "error:" in captured.err and "\t" not in captured.out  # refused before the table's header

    assert main(["evaluate", "base", "--n-samples", "50", "--kid-subsets", "2", "--kid-subset-size", "40"]) == 0
    saved = json.loads((trained_run / "eval.json").read_text())
    assert saved["run_id"] == "base" and saved["n_gen"] == 50 and saved["embedder"] == "pixels"
    assert saved["wfid"] == pytest.approx(saved["fid"])  # a baseline's own weights are uniform
    assert (trained_run / "eval_grid.png").exists()
    assert "base\t" in capsys.readouterr().out


@pytest.mark.gpu
def test_generation_on_cuda_matches_cpu():
    import torch

    from core.training.networks import Generator

    torch.manual_seed(0)
    generator = Generator((1, 28, 28))
    on_cpu = generate_images(generator, 32, seed=1)
    on_gpu = generate_images(generator.to("cuda"), 32, seed=1)  # same CPU latents, GPU forward
    assert np.abs(on_cpu.astype(int) - on_gpu.astype(int)).max() <= 2
