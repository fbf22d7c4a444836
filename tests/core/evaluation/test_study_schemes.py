"""The study with other weighting schemes and the flow model: every scheme trained, labelled and
compared, and the report says which gave the highest VS and the lowest wFID."""

import csv
import json

import numpy as np
import pytest

from core.cli import build_parser, main
from core.cli.study import config_from_args
from core.evaluation.compare import comparable_runs, run_label
from core.evaluation.study_plan import StudyConfig, StudyState
from core.evaluation.study_verdict import best_of, verdict_sentences
from core.workbench import Workbench

SCHEMES = ("uniform", "diversity", "class-balanced", "inverse-density")
TINY = StudyConfig.quick(pairs=((0, 1),), seeds=2, gammas=(1.0,), per_class=30, steps=2, batch_size=16,
                         weight_steps=10, n_samples=40, kid_subsets=2, kid_subset_size=30, model="flow",
                         schemes=SCHEMES)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("data") / "flow-study"
    return out, Workbench(out.parent).study(TINY, out)


def test_every_scheme_is_trained_as_a_flow_model_and_labelled(finished):
    out, result = finished
    assert TINY.models() == ["baseline", "divw_g1", "class-balanced", "inverse-density"]
    assert {(r["model"], r["seed"]) for r in result["metrics"]} == {(m, s) for m in TINY.models() for s in (0, 1)}
    record = json.loads((out / "runs/0-1_s0_class-balanced/config.json").read_text())
    assert record["train"]["model"] == "flow" and record["scheme"] == "class-balanced"
    p = np.load(out / "runs/0-1_s0_class-balanced/weights.npy")
    labels = Workbench(out.parent).run_dataset(out / "runs/0-1_s0_class-balanced").labels
    np.testing.assert_allclose([p[labels == c].sum() for c in (0, 1)], [0.5, 0.5])
    assert json.loads((out / "runs/0-1_s1_divw_g1/config.json").read_text())["scheme"] == "diversity"
    assert run_label(out / "runs/0-1_s0_inverse-density") == "0-1 inverse-density (flow)"
    assert run_label(out / "runs/0-1_s0_baseline") == "0-1 baseline (flow)"
    labels = {row["label"] for row in comparable_runs(out.parent)}
    assert "0-1 class-balanced (flow)" in labels and "0-1 DivW γ=1 (flow)" in labels


def test_report_says_which_scheme_gave_the_highest_vs_and_lowest_wfid(finished):
    out, _ = finished
    text = (out / "report.html").read_text()
    assert "the highest VS came from" in text and "the lowest wFID came from" in text
    assert "(flow)" in text and "The data under each weighting" in text
    rows = list(csv.DictReader((out / "schemes.csv").open()))
    assert {r["model"] for r in rows} == set(TINY.models())
    verdict = (out / "verdict.md").read_text()
    assert verdict.count("Pair 0-1") == 2


def test_verdict_picks_the_best_mean_and_says_when_intervals_overlap():
    summary = [{"pair": "0-1", "model": "baseline", "metric": "vs", "mean": 3.0, "ci": 0.1, "n": 3},
               {"pair": "0-1", "model": "divw_g1", "metric": "vs", "mean": 4.0, "ci": 0.2, "n": 3},
               {"pair": "0-1", "model": "baseline", "metric": "wfid", "mean": 10.0, "ci": 3.0, "n": 3},
               {"pair": "0-1", "model": "class-balanced", "metric": "wfid", "mean": 9.0, "ci": 1.0, "n": 3}]
    (vs,) = best_of(summary, "vs", higher=True)
    assert (vs["model"], vs["runner_up"], vs["overlap"]) == ("divw_g1", "baseline", False)
    (wfid,) = best_of(summary, "wfid", higher=False)
    assert (wfid["model"], wfid["overlap"]) == ("class-balanced", True)
    sentences = verdict_sentences(summary)
    assert sentences[0].startswith("Pair 0-1: the highest VS came from DivW γ=1 (4 ± 0.2)")
    assert "do not settle it" in sentences[1]
    one_seed = [dict(row, n=1, ci=0.0) for row in summary]
    assert "one seed only" in verdict_sentences(one_seed)[0]


def test_cli_takes_model_and_schemes_and_refuses_unknown_ones(data_root, capsys):
    args = build_parser().parse_args(["study", "--quick", "--model", "flow", "--schemes", ",".join(SCHEMES)])
    config = config_from_args(args)
    assert config.model == "flow" and config.schemes == SCHEMES
    assert main(["study", "--quick", "--schemes", "uniform,magic", "--out", "s"]) == 2
    assert "--schemes" in capsys.readouterr().err


def test_an_older_study_without_the_new_fields_still_opens(tmp_path):
    config = StudyConfig.quick()
    StudyState.open(tmp_path, config)
    saved = json.loads((tmp_path / "state.json").read_text())
    for key in ("model", "schemes"):
        del saved["config"][key]
    (tmp_path / "state.json").write_text(json.dumps(saved))
    assert StudyState.open(tmp_path, config).config == saved["config"]
