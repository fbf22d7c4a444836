"""One test per workbench operation (CPU, tiny data): the layer the studio, the CLI and the study share."""

import json
from pathlib import Path

import numpy as np
import pytest

from core.data.datasets import DatasetSpec
from core.data.embed import EmbedConfig
from core.diversity.weights import WeightsConfig
from core.evaluation.evaluate import EvalConfig
from core.jobs import JobStopped
from core.training import runs
from core.training.config import TrainConfig
from core.workbench import Workbench

PAIR = DatasetSpec("digits", (0, 1), 20)
PIXELS = EmbedConfig.parse("pixels")
TINY_TRAIN = TrainConfig.preset("quick", steps=2, batch_size=8, device="cpu", log_every=1, sample_every=2,
                                checkpoint_every=2)


@pytest.fixture
def wb(data_root):
    return Workbench(data_root)


@pytest.fixture
def ready(wb):
    return wb.prepare(PAIR, PIXELS)


def test_load_confines_the_studio_and_not_the_cli(wb, tmp_path):
    assert len(wb.load(PAIR)) == 40
    outside = tmp_path / "elsewhere.npy"
    np.save(outside, np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="outside the data root"):
        wb.load(DatasetSpec(str(outside)))
    assert len(Workbench(wb.data_root, confine=False).load(DatasetSpec(str(outside)))) == 3


def test_embed_reports_progress_caches_and_stops(wb):
    dataset, events = wb.load(PAIR), []
    features, hit = wb.embed(dataset, PIXELS, on_progress=events.append)
    assert features.shape == (40, 64) and not hit and events[-1].job == "embed" and events[-1].fraction == 1.0
    assert wb.embed(dataset, PIXELS)[1]  # from the cache under the data root
    with pytest.raises(JobStopped):
        wb.embed(dataset, PIXELS, should_stop=lambda: True, use_cache=False)


def test_prepare_is_load_then_embed(ready):
    assert ready.spec == PAIR and ready.features.shape == (40, 64) and ready.embedder.describe() == "pixels"


def test_weights_stream_every_step_then_come_from_the_cache(wb, ready):
    events = []
    result = wb.weights(ready.features, WeightsConfig(gamma=1.0, steps=12), on_progress=events.append)
    assert [e.done for e in events] == list(range(1, 13)) and {e.job for e in events} == {"weights"}
    assert events[-1].total == 12 and set(events[-1].values) >= {"vs", "entropy", "ess", "lr"}
    assert result.vs_final > result.vs_uniform and not result.stopped
    assert result.config == WeightsConfig(gamma=1.0, steps=12)  # the caller's config, carried through unchanged
    again = wb.weights(ready.features, WeightsConfig(gamma=1.0, steps=12), on_progress=events.append)
    assert again.extra.get("cache_hit") and len(events) == 12
    np.testing.assert_array_equal(again.p, result.p)


def test_a_stopped_run_is_returned_as_stopped_and_not_cached(wb, ready):
    calls = iter(range(100))
    stopped = wb.weights(ready.features, WeightsConfig(steps=50), should_stop=lambda: next(calls) >= 3)
    assert stopped.stopped and len(stopped.history) == 3
    assert not wb.weights(ready.features, WeightsConfig(steps=50)).stopped  # computed anew, in full


def test_sweep_computes_every_gamma_in_one_run(wb, ready):
    events = []
    results = wb.sweep(ready.features, [0.0, 1.0], WeightsConfig(steps=6), on_progress=events.append)
    assert sorted(results) == [0.0, 1.0] and {e.job for e in events} == {"sweep"}
    assert len(events[-1].values["rows"]) == 2
    assert results[1.0].vs_final > results[0.0].vs_final


def test_inspect_summarises_what_the_weights_do(wb, ready):
    p = wb.weights(ready.features, WeightsConfig(gamma=1.0, steps=10)).p
    view = wb.inspect(ready.dataset, p, k=5, batch_size=16)
    assert len(view.top) == len(view.bottom) == 5 and p[view.top[0]] == p.max()
    np.testing.assert_allclose(view.relative, 40 * p)
    assert view.histogram[0].sum() == 40 and view.class_names == ["0", "1"]
    assert view.class_mass.weighted.sum() == pytest.approx(1.0)
    assert view.summary["entropy"] < view.summary["entropy_uniform"] == pytest.approx(np.log(40))
    with pytest.raises(ValueError):
        wb.inspect(ready.dataset, p, k=0)


def test_exports_are_keyed_by_everything_the_weights_depend_on(wb, ready):
    result = wb.weights(ready.features, WeightsConfig(steps=5))
    pixels = wb.export(ready.dataset, "pixels", result, batch_size=32)
    other = wb.export(ready.dataset, "ViT-B-32/openai", result)
    assert pixels.npy.parent != other.npy.parent  # another embedder never overwrites these files
    assert wb.generated_dir() in pixels.csv.parents and "batch_size=32" in pixels.snippet
    np.testing.assert_allclose(np.load(pixels.npy), result.p)
    assert json.loads(pixels.json.read_text())["embedder"] == "pixels"


def test_map_layout_samples_and_refuses_unknown_methods(wb, ready):
    layout = wb.map_layout(ready.features, "pca", max_points=10)
    assert layout.method == "pca" and layout.coords.shape == (10, 2) and len(set(layout.indices)) == 10
    assert wb.map_layout(ready.features, "auto", max_points=10).method in ("pca", "umap")
    with pytest.raises(ValueError, match="UMAP or PCA"):
        wb.map_layout(ready.features, "tsne")


def test_a_run_folder_is_written_once_then_executed(wb, ready):
    p = wb.weights(ready.features, WeightsConfig(gamma=1.0, steps=5)).p
    run_dir = wb.create_run(PAIR, p, TINY_TRAIN, label="gamma=1 (pixels)", preset="quick", name="pair-divw")
    record = runs.read_config(run_dir)
    assert run_dir.parent == wb.runs_root() and run_dir.name.startswith("pair-divw-")
    assert DatasetSpec.from_dict(record["dataset"]) == PAIR and record["train"]["steps"] == 2
    np.testing.assert_array_equal(np.load(run_dir / "weights.npy"), p)
    assert runs.read_status(run_dir)["state"] == "created"
    events = []
    assert wb.execute_run(run_dir, queue=False, on_progress=events.append) == "finished"
    assert [e.done for e in events] == [1, 2] and events[0].job == "train"
    with pytest.raises(ValueError, match="already holds a run"):
        wb.create_run(PAIR, p, TINY_TRAIN, run_dir=run_dir)
    assert wb.create_run(PAIR, p, TINY_TRAIN, run_dir=run_dir, reuse=True) == run_dir  # the same run: kept
    with pytest.raises(ValueError, match="cannot resume"):
        wb.create_run(PAIR, None, TINY_TRAIN, run_dir=run_dir, reuse=True)  # other weights: refused


def test_executing_refuses_a_changed_dataset_and_marks_the_run_failed(wb, tmp_path):
    images = tmp_path / "mine.npy"
    np.save(images, np.random.default_rng(0).integers(0, 255, (6, 4, 4), np.uint8))
    cli = Workbench(wb.data_root, confine=False)
    run_dir = cli.create_run(DatasetSpec(str(images)), None, TINY_TRAIN, run_dir=tmp_path / "anywhere" / "run")
    np.save(images, np.zeros((6, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="changed since the run was created"):
        cli.execute_run(run_dir, queue=False)
    assert runs.read_status(run_dir)["state"] == "failed"


def test_listing_stopping_resuming_and_deleting_runs(wb):
    run_dir = wb.create_run(PAIR, None, TINY_TRAIN, name="pair-baseline")
    assert [r["run_id"] for r in wb.list_runs()] == [run_dir.name] and wb.run_dir(run_dir.name) == run_dir
    for bad in ("../..", "", "nope"):
        with pytest.raises(ValueError):
            wb.run_dir(bad)
    with pytest.raises(ValueError, match="nothing to stop"):
        wb.stop_run(run_dir)
    runs.write_status(run_dir, "running", pid=None)
    wb.stop_run(run_dir)
    assert runs.stop_requested(run_dir)
    runs.write_status(run_dir, "finished")
    with pytest.raises(ValueError, match="finished all its steps"):
        wb.resume_run(run_dir)
    wb.delete_run(run_dir)
    assert wb.list_runs() == []


def test_evaluate_compare_and_coverage(wb, ready):
    run_dir = wb.create_run(PAIR, None, TINY_TRAIN, name="pair-baseline")
    wb.execute_run(run_dir, queue=False)
    config = EvalConfig.for_embedder(PIXELS, n_samples=30, kid_subsets=2, kid_subset_size=20, device="cpu")
    events = []
    (result,) = wb.evaluate([run_dir], config, on_progress=events.append)
    assert result["embedder"] == "pixels" and (run_dir / "eval.json").exists() and events[-1].fraction == 1.0
    assert wb.compare([run_dir])[0]["model"] == "baseline"
    views = wb.coverage([run_dir], config, samples=12, nearest_shown=2)
    assert views.real_xy.shape == (40, 2) and views.gen_xy["baseline"].shape == (12, 2)
    assert views.classes == ["0", "1"] and len(views.nearest) == 2
    with pytest.raises(JobStopped):
        wb.evaluate([run_dir], config, should_stop=lambda: True)


def test_eval_config_follows_the_weights_embedder():
    assert EvalConfig.for_embedder("ViT-B-32/laion2b_s34b_b79k").pretrained == "laion2b_s34b_b79k"
    assert EvalConfig.for_embedder("precomputed").embedder == "pixels"  # generated images have no precomputed features
    assert isinstance(EvalConfig.for_embedder(PIXELS, n_samples=5), EvalConfig)


def test_run_names_carry_gamma(wb):
    names = [wb.create_run(PAIR, None, TINY_TRAIN, name=f"pair-divw-g{gamma:g}").name for gamma in (0.5, 0.8, 0)]
    assert [name.split("-2")[0] for name in names] == ["pair-divw-g0p5", "pair-divw-g0p8", "pair-divw-g0"]
    label_named = wb.create_run(PAIR, None, TINY_TRAIN, label="gamma=0.25 (pixels)").name  # the default name
    assert label_named.startswith("digits-gamma-0p25-pixels-")


def test_run_folders_from_the_page_are_direct_children_of_runs(wb, tmp_path):
    run_dir = wb.create_run(PAIR, None, TINY_TRAIN, name="x" * 300)  # a long name is shortened, not a traceback
    assert run_dir.parent == wb.runs_root() and len(run_dir.name) < 80
    for bad in ("../x", "a/../../b", f"{run_dir.name}/checkpoints", ".", "runs/../../y"):
        with pytest.raises(ValueError):
            wb.run_dir(bad)
    orphan = wb.runs_root() / "orphan"
    orphan.mkdir()  # a folder whose run never got a status: it can still be deleted
    wb.delete_run(wb.run_dir("orphan"))
    assert not orphan.exists()
    cli = Workbench(wb.data_root, confine=False)
    for folder in (wb.data_root, wb.runs_root(), wb.data_root.parent):
        with pytest.raises(ValueError, match="choose a folder of the run's own"):
            cli.create_run(PAIR, None, TINY_TRAIN, run_dir=folder)


def test_a_run_folder_named_like_an_option_is_executed(wb, data_root):
    import subprocess
    import sys

    run_dir = wb.create_run(PAIR, None, TINY_TRAIN, run_dir=data_root / "runs" / "--no-queue")
    command = [sys.executable, "-m", "core", "train", f"--run-dir={run_dir}"]  # what launch_run runs
    assert subprocess.run(command, cwd=Path(__file__).resolve().parents[2], capture_output=True, timeout=120).returncode == 0
    assert runs.read_status(run_dir)["state"] == "finished"


def test_auto_map_of_many_dots_is_pca_until_umap_is_drawn(data_root, monkeypatch):
    from core.data import projection

    wb = Workbench(data_root)
    features = np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32)
    monkeypatch.setattr(projection, "is_warm", lambda: True)  # compiled, but no layout cached yet
    layout = wb.map_layout(features, "auto", max_points=40)  # UMAP takes seconds to minutes: not in passing
    assert layout.method == "pca" and "Draw map" in layout.note
    wb.map_layout(features, "umap", max_points=40)  # the Draw map button's job, cached
    assert wb.map_layout(features, "auto", max_points=40).method == "umap"
