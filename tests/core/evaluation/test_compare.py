import json

import numpy as np

from core.evaluation.compare import class_mass_rows, comparable_runs, metric_table, run_label, shared_map


def test_metric_table_pools_seeds_and_keeps_embedders_apart():
    evaluations = [
        {"model": "baseline", "embedder": "pixels", "fid": 1.0, "vs": 2.0},
        {"model": "baseline", "embedder": "pixels", "fid": 3.0, "vs": 2.0},
        {"model": "baseline", "embedder": "ViT-L-14/openai", "fid": 9.0},
    ]
    rows = {(r["model"], r["embedder"]): r for r in metric_table(evaluations)}
    pooled = rows[("baseline", "pixels")]
    assert pooled["n_seeds"] == 2 and pooled["fid"][0] == 2.0 and pooled["fid"][1] > 0 and pooled["vs"] == (2.0, 0.0)
    assert rows[("baseline", "ViT-L-14/openai")]["fid"] == (9.0, 0.0)
    assert np.isnan(pooled["is"][0])  # never measured: shown as missing, not as 0


def test_class_mass_compares_data_target_and_models():
    features_real = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    labels = np.array([3, 3, 8, 8])
    p_target = np.array([0.1, 0.1, 0.4, 0.4])
    collapsed = np.array([[1.0, 0.05]] * 5)  # every sample looks like a 3
    classes, shares = class_mass_rows(labels, p_target, features_real, {"model": collapsed})
    assert classes == [3, 8]
    np.testing.assert_allclose(shares["data"], [0.5, 0.5])
    np.testing.assert_allclose(shares["target"], [0.2, 0.8])
    np.testing.assert_allclose(shares["model"], [1.0, 0.0])


def test_shared_map_places_generated_samples_on_the_data_map():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(100, 5)) * [5, 1, 1, 1, 1]
    real_xy, gen_xy, method = shared_map(real, {"copy": real[:10]}, "pca")
    assert method == "PCA" and real_xy.shape == (100, 2)
    np.testing.assert_allclose(gen_xy["copy"], real_xy[:10])  # same points land on the same spots


def test_runs_of_studies_and_of_the_studio_are_found_and_labelled(tmp_path):
    study_run = tmp_path / "my-study" / "runs" / "3-8_s1_divw_g0.8"
    studio_run = tmp_path / "runs" / "r1"
    for run_dir, weights in ((study_run, "weights"), (studio_run, "uniform")):
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text(json.dumps({"weights": weights, "train": {}, "created": 1.0}))
    (tmp_path / "my-study" / "state.json").write_text("{}")
    found = {row["label"]: row for row in comparable_runs(tmp_path)}
    assert set(found) == {"3-8 DivW γ=0.8", "baseline"}
    assert run_label(study_run.parent / "0-1_s0_baseline") == "0-1 baseline"
    assert not found["baseline"]["evaluated"]


def test_an_evaluation_older_than_the_last_checkpoint_is_marked_and_never_pooled(trained_run, data_root):
    """A run evaluated at step 1 and then trained on to step 3: Compare marks its numbers out of date,
    keeps them apart from a current evaluation, and the run list says so."""
    from core.cli import main
    from core.evaluation.compare import comparison_warnings, load_evaluations
    from core.evaluation.evaluate import EvalConfig, evaluate_run

    config = EvalConfig(n_samples=40, kid_subset_size=20, kid_subsets=2, inception="probe", device="cpu")
    evaluation = evaluate_run(trained_run, config, data_root=data_root)
    assert evaluation["checkpoint_step"] == 1
    current = load_evaluations([trained_run])[0]
    assert not current["stale"] and comparable_runs(data_root)[0]["evaluated"] == "current"

    assert main(["train", "--run-dir", str(trained_run), "--steps", "3", "--no-queue"]) == 0  # trained on
    [stale] = load_evaluations([trained_run])
    assert stale["stale"] and stale["trained_step"] == 3
    assert comparable_runs(data_root)[0]["evaluated"] == "out of date"
    rows = metric_table([stale, current | {"model": "baseline"}])
    assert {row["model"] for row in rows} == {"baseline", "baseline (out of date)"}
    assert [row["steps"] for row in rows if "out of date" in row["model"]] == ["1/3"]
    warning = " ".join(comparison_warnings([trained_run], [stale]))
    assert "evaluated at step 1, trained to 3" in warning and "Evaluate selected runs" in warning

    evaluate_run(trained_run, config, data_root=data_root)  # re-evaluated: current again
    assert not load_evaluations([trained_run])[0]["stale"]
