"""The workbench's explaining operations: suggest γ (cached), weight health, modes, why, browse,
and the export's why-columns (CPU, tiny data)."""

import csv
import dataclasses

import numpy as np
import pytest

from core.data.datasets import DatasetSpec
from core.data.embed import EmbedConfig
from core.diversity.weights import WeightsConfig
from core.workbench import Workbench

PAIR = DatasetSpec("digits", (0, 1), 30)
CONFIG = WeightsConfig(steps=15)


@pytest.fixture
def wb(data_root):
    return Workbench(data_root)


@pytest.fixture
def ready(wb):
    return wb.prepare(PAIR, EmbedConfig.parse("pixels"))


def test_suggest_gamma_reports_progress_and_shares_the_weights_cache(wb, ready):
    events = []
    found = wb.suggest_gamma(ready.features, 0.6, config=CONFIG, on_progress=events.append)
    assert 1 / np.sum(found.result.p ** 2) >= 0.6 * 60 and found.runs <= 4
    assert any("γ =" in e.message for e in events) and {e.job for e in events} == {"suggest"}
    cached = wb.cached_weights(ready.features, [found.gamma], CONFIG)  # the studio's Weights tab finds it
    np.testing.assert_allclose(cached[found.gamma].p, found.result.p)
    assert wb.suggest_gamma(ready.features, 0.6, config=CONFIG).runs == 0
    with pytest.raises(ValueError, match="steps"):
        wb.suggest_gamma(ready.features, 0.6, config=WeightsConfig(steps=10**6))


def test_weight_health_and_modes_and_why(wb, ready):
    p = wb.weights(ready.features, WeightsConfig(gamma=1.0, steps=CONFIG.steps)).p
    health = wb.weight_health(p, batch_size=32)
    assert health.batch_size == 32 and health.healthy == (health.message == "")
    view = wb.modes(ready.features, p, n_modes=3, per_mode=4)
    assert view.shares_weighted.sum() == pytest.approx(1.0) and len(view.top_images) == 3
    why = wb.why(ready.features, p, 5, k=3)
    assert why.index == 5 and len(why.neighbours) == 3 and 5 not in why.neighbours
    with pytest.raises(ValueError):
        wb.modes(ready.features, p, n_modes=0)


def test_browse_pages_through_every_example_by_weight(wb, ready):
    p = np.random.default_rng(0).dirichlet(np.ones(60))
    first = wb.browse(ready.dataset, p, page=1, per_page=48)
    second = wb.browse(ready.dataset, p, page=2, per_page=48)
    assert (first.pages, first.total, len(first.indices), len(second.indices)) == (2, 60, 48, 12)
    shown = np.concatenate([first.indices, second.indices])
    np.testing.assert_array_equal(shown, np.argsort(-p, kind="stable"))
    np.testing.assert_allclose(first.relative, 60 * p[first.indices])
    ones = wb.browse(ready.dataset, p, descending=False, label=1)
    assert set(ready.dataset.labels[ones.indices]) == {1} and np.all(np.diff(p[ones.indices]) >= 0)
    assert wb.browse(ready.dataset, p, page=99).page == 2  # clipped to the last page
    with pytest.raises(ValueError, match="no example has class"):
        wb.browse(ready.dataset, p, label=7)


def test_export_with_features_says_why(wb, ready):
    result = wb.weights(ready.features, CONFIG)
    files = wb.export(ready.dataset, "pixels", result, features=ready.features)
    rows = list(csv.DictReader(files.csv.open()))
    assert len(rows) == 60 and {"vs_gain_pct_per_pct_mass", "nearest_neighbours", "neighbour_similarities"} <= set(rows[0])
    assert len(rows[0]["nearest_neighbours"].split(";")) == 3
    plain = wb.export(ready.dataset, "pixels", result)
    assert "nearest_neighbours" not in plain.csv.read_text().splitlines()[0]


def test_export_names_the_classes(wb, ready):
    named = dataclasses.replace(ready.dataset, class_names=["zero", "one"] + [str(c) for c in range(2, 10)])
    rows = list(csv.DictReader(wb.export(named, "pixels", wb.weights(ready.features, CONFIG)).csv.open()))
    assert [r["label"] for r in rows] == [["zero", "one"][c] for c in named.labels]
    assert [int(r["label_id"]) for r in rows] == named.labels.tolist()


def test_export_above_the_neighbour_cap_says_so_and_keeps_the_contributions(wb, ready, monkeypatch):
    from core.diversity import contribution

    result = wb.weights(ready.features, CONFIG)
    full = list(csv.DictReader(wb.export(ready.dataset, "pixels", result, features=ready.features).csv.open()))
    monkeypatch.setattr(contribution, "EXPORT_NEIGHBOURS_MAX_N", 59)  # 60 images: above the cap
    files = wb.export(ready.dataset, "pixels", result, features=ready.features,
                      explained=wb.explain_weights(ready.features, result.p))
    rows = list(csv.DictReader(files.csv.open()))
    assert "nearest_neighbours" not in rows[0] and "59" in files.note
    assert [r["vs_gain_pct_per_pct_mass"] for r in rows] == [r["vs_gain_pct_per_pct_mass"] for r in full]
    import json
    assert json.loads(files.json.read_text())["notes"] == [files.note]
