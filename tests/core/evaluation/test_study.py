import csv
import json
from pathlib import Path

import numpy as np
import pytest

from core.evaluation import study
from core.evaluation.evaluate import run_dataset
from core.cli import main
from core.evaluation.study_plan import StudyConfig
from core.workbench import Workbench

TINY = StudyConfig.quick(pairs=((0, 1),), seeds=2, gammas=(1.0,), per_class=40, steps=1, batch_size=16,
                         weight_steps=10, n_samples=60, kid_subsets=3, kid_subset_size=50)


def run_study(config, out, data_root):
    """The study through the workbench of `data_root`, as the CLI and the studio run it."""
    return Workbench(data_root).study(config, out)


@pytest.fixture
def count_training(monkeypatch):
    calls = []
    real = study.train_model

    def counting(run_dir, *args, **kwargs):
        calls.append(run_dir.name)
        real(run_dir, *args, **kwargs)

    monkeypatch.setattr(study, "train_model", counting)
    return calls


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, run_study(TINY, out, data_root=out)


def test_a_tiny_study_writes_every_output(finished):
    out, result = finished
    for name in ("table1.csv", "table1.md", "metrics.csv", "fig3.html", "fig3.png", "fig4.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["seed"], r["model"]) for r in rows) == sorted(
        (str(s), m) for s in (0, 1) for m in ("baseline", "divw_g1"))
    assert all(r["embedder"] == "pixels" and float(r["fid"]) >= 0 for r in rows)
    report = (out / "report.html").read_text()
    assert "Table 1" in report and "data:image/png;base64" in report and "divw_g1" in report


def test_table1_shows_weights_raise_the_vendi_score(finished):
    out, result = finished
    table = list(csv.DictReader(open(out / "table1.csv")))
    assert [row["gamma"] for row in table] == ["1.0"]
    for row in table:
        assert row["n_seeds"] == "2"
        assert float(row["vs_weighted_mean"]) > float(row["vs_uniform_mean"])


def test_divw_models_train_on_their_weights(finished):
    out, _ = finished
    p = np.load(out / "weights" / "0-1_s0_g1.npy")
    assert p.shape == (80,) and p.sum() == pytest.approx(1.0)
    run_dir = study.run_dir_of(out, (0, 1), 0, "divw_g1")
    rebuilt = run_dataset(run_dir, data_root=out)  # from the spec recorded in config.json
    assert len(rebuilt.images) == 80 and set(rebuilt.labels.tolist()) == {0, 1}
    assert study.model_weights(out, (0, 1), 0, "baseline") is None
    np.testing.assert_array_equal(study.model_weights(out, (0, 1), 0, "divw_g1"), p)


def test_a_finished_study_is_not_redone(finished, count_training):
    out, before = finished
    again = run_study(TINY, out, data_root=out)
    assert count_training == []
    assert again["metrics"] == before["metrics"]


def test_an_interrupted_study_resumes_where_it_stopped(tmp_path, monkeypatch, count_training):
    config = StudyConfig.quick(**{**TINY.__dict__, "seeds": 1})
    real = study.train_model

    def interrupted(run_dir, *args, **kwargs):
        if run_dir.name.endswith("divw_g1"):
            raise KeyboardInterrupt
        real(run_dir, *args, **kwargs)

    monkeypatch.setattr(study, "train_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study(config, tmp_path, data_root=tmp_path)
    done = json.loads((tmp_path / "state.json").read_text())["done"]
    assert set(done) == {"weights/0-1/seed0", "train/0-1/seed0/baseline", "eval/0-1/seed0/baseline"}
    monkeypatch.setattr(study, "train_model", real)
    calls = []
    monkeypatch.setattr(study, "train_model", lambda *a, **kw: (calls.append(a[0].name), real(*a, **kw)))
    result = run_study(config, tmp_path, data_root=tmp_path)
    assert calls == ["0-1_s0_divw_g1"] and len(result["metrics"]) == 2


def test_a_folder_of_another_study_is_refused(finished):
    out, _ = finished
    with pytest.raises(ValueError, match="different settings"):
        run_study(StudyConfig.quick(**{**TINY.__dict__, "seeds": 3}), out, data_root=out)


def test_cli_rejects_bad_pairs_and_writes_nothing(data_root, capsys):
    assert main(["study", "--quick", "--pairs", "0-0", "--out", "s"]) == 2
    assert "--pairs" in capsys.readouterr().err
    assert main(["study", "--quick", "--pairs", "0-11", "--out", "s"]) == 2
    assert not (data_root / "s").exists() and not Path("s").exists()


def test_cli_arguments_become_the_study_config():
    from core.cli import build_parser
    from core.cli.study import config_from_args

    args = build_parser().parse_args(["study", "--pairs", "0-1,4-9", "--gammas", "0.6,1", "--seeds", "3",
                                      "--steps", "50", "--embedder", "ViT-B-32/laion2b_s34b_b79k"])
    config = config_from_args(args)
    assert config.dataset == "mnist" and config.pairs == ((0, 1), (4, 9)) and config.gammas == (0.6, 1.0)
    assert (config.seeds, config.steps, config.embedder, config.pretrained) == (3, 50, "ViT-B-32", "laion2b_s34b_b79k")
    quick = config_from_args(build_parser().parse_args(["study", "--quick"]))
    assert quick.dataset == "digits" and quick.device == "cpu" and quick.preset == "quick"


def test_a_resumed_study_scores_again_a_model_that_trained_on_after_its_evaluation(tmp_path):
    from core.evaluation.study import _stale

    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "ckpt-0000010.safetensors").write_bytes(b"")
    assert _stale(run_dir, {"checkpoint_step": 5})  # evaluated at 5, checkpoint at 10: never mixed in
    assert not _stale(run_dir, {"checkpoint_step": 10})
    assert not _stale(run_dir, {"fid": 1.0})  # rows of older studies carry no step: kept
