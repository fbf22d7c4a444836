"""`suggest_gamma` meets its constraint, is monotone in it, reuses the cache; the weight-health check."""

import numpy as np
import pytest

from core.diversity import suggest
from core.diversity.weights import WeightsConfig, sweep

CONFIG = WeightsConfig(steps=30)


@pytest.fixture(scope="module")
def features():
    from sklearn.datasets import load_digits

    return load_digits().data[:200] + 0.5


def _ess_fraction(p):
    return 1.0 / np.sum(p * p) / p.size


def test_meets_the_constraint_and_is_the_largest_grid_gamma(features, tmp_path):
    found = suggest.suggest_gamma(features, 0.5, config=CONFIG, cache_dir=tmp_path)
    assert _ess_fraction(found.result.p) >= 0.5 and found.result.config.gamma == found.gamma
    assert found.runs <= 4
    assert found.gamma in suggest.GRID
    if found.gamma < 1:  # the next grid point misses (an independent run)
        next_gamma = suggest.GRID[suggest.GRID.index(found.gamma) + 1]
        p_next = sweep(features, [next_gamma], CONFIG)[next_gamma].p
        assert _ess_fraction(p_next) < 0.5
    gammas = [row["gamma"] for row in found.curve]
    assert gammas == sorted(gammas) and found.gamma in gammas


def test_monotone_in_the_constraint(features, tmp_path):
    chosen = [suggest.suggest_gamma(features, f, config=CONFIG).gamma for f in (0.2, 0.4, 0.6, 0.8)]
    assert chosen == sorted(chosen, reverse=True) and chosen[0] > chosen[-1]
    ratios = [suggest.suggest_gamma(features, None, r, config=CONFIG).gamma for r in (2.0, 5.0, 20.0)]
    assert ratios == sorted(ratios)


def test_weight_ratio_constraint_and_both(features):
    found = suggest.suggest_gamma(features, None, 3.0, config=CONFIG)
    assert found.result.p.max() * 200 <= 3.0 + 1e-9
    both = suggest.suggest_gamma(features, 0.5, 3.0, config=CONFIG)
    assert both.gamma <= found.gamma and _ess_fraction(both.result.p) >= 0.5


def test_the_cache_is_reused(features, tmp_path):
    first = suggest.suggest_gamma(features, 0.5, config=CONFIG, cache_dir=tmp_path)
    again = suggest.suggest_gamma(features, 0.5, config=CONFIG, cache_dir=tmp_path)
    assert first.runs > 0 and again.runs == 0 and again.gamma == first.gamma
    assert {row["source"] for row in again.curve} <= {"cache", "uniform"}


def test_grid_points_are_slider_steps_and_bad_grids_are_refused(features):
    assert len(suggest.GRID) == 16 and all(abs(g * 20 - round(g * 20)) < 1e-12 for g in suggest.GRID)
    assert {0.2, 0.4, 0.6, 0.8, 1.0} <= set(suggest.GRID)
    with pytest.raises(ValueError, match="grid"):
        suggest.suggest_gamma(features, 0.5, config=CONFIG, grid=(0.5, 1.0))


def test_unreachable_constraint_gives_uniform(features):
    found = suggest.suggest_gamma(features, 1.0, config=CONFIG)
    assert found.gamma == 0.0 and np.ptp(found.result.p) == 0


@pytest.mark.parametrize("bad", [dict(min_ess_fraction=None), dict(min_ess_fraction=0.0),
                                 dict(min_ess_fraction=1.5), dict(max_weight_ratio=0.5)])
def test_bad_constraints(features, bad):
    with pytest.raises(ValueError):
        suggest.suggest_gamma(features, **{"min_ess_fraction": 0.25, **bad}, config=CONFIG)


def test_stop_raises_and_caches_nothing(features, tmp_path):
    from core.jobs import JobStopped

    with pytest.raises(JobStopped):
        suggest.suggest_gamma(features, 0.5, config=CONFIG, cache_dir=tmp_path, should_stop=lambda: True)
    assert suggest.suggest_gamma(features, 0.5, config=CONFIG, cache_dir=tmp_path).runs > 0


def test_weight_health():
    n = 2000
    assert suggest.weight_health(np.full(n, 1 / n)).healthy
    p = np.full(n, 1e-6)
    p[:40] = (1 - p[40:].sum()) / 40  # 40 images carry almost everything
    health = suggest.weight_health(p, 64, suggested_gamma=0.4)
    assert not health.healthy and health.ess_fraction < 0.1 and "γ = 0.40" in health.message
    assert "saturated" in health.message
