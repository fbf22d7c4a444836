"""Requests from the web page stay within documented ranges, refused before any work; the command
line's workbench has no such limits."""

import numpy as np
import pytest

from core.data.datasets import DatasetSpec
from core.diversity.weights import WeightsConfig
from core.evaluation.evaluate import EvalConfig
from core.limits import RequestLimits
from core.training.config import TrainConfig
from core.workbench import Workbench

FEATURES = np.random.default_rng(0).random((20, 6))


@pytest.fixture
def studio(data_root):
    return Workbench(data_root)  # confined: what the studio uses


@pytest.mark.parametrize("call, message", [
    (lambda wb: wb.weights(FEATURES, WeightsConfig(steps=10**9)), "steps must be between 1 and 10,000"),
    (lambda wb: wb.sweep(FEATURES, np.linspace(0, 1, 1001), WeightsConfig(steps=5)), "number of γ values"),
    (lambda wb: wb.weights(FEATURES, WeightsConfig(lr=1e6)), "learning rate"),
    (lambda wb: wb.map_layout(FEATURES, "pca", 10**8), "number of dots"),
    (lambda wb: wb.create_run(DatasetSpec("digits"), None, TrainConfig.preset("quick", steps=10**30, device="cpu")),
     "training steps"),
    (lambda wb: wb.evaluate([], EvalConfig(n_samples=10**9)), "number of samples"),
])
def test_out_of_range_requests_are_refused_before_work(studio, call, message):
    with pytest.raises(ValueError, match=message):
        call(studio)
    assert not (studio.data_root / "cache" / "weights").exists() and not studio.list_runs()


def test_long_work_within_the_ranges_is_refused_before_it_starts(studio):
    """Suggest γ at 10,000 steps on 120 images held the shared slot 7.5 min (4 runs of 10,000 steps);
    10,000 steps on 2,000 CLIP-sized images would hold it longer. Both are refused with a sentence and
    leave no cache; what fits the bound still runs."""
    small, wide = np.random.default_rng(1).random((120, 64)), np.zeros((2000, 768))
    with pytest.raises(ValueError, match="too much work for the shared studio: 4 run\\(s\\) of 10,000 steps"):
        studio.suggest_gamma(small, 0.25, None, WeightsConfig(steps=10_000))
    with pytest.raises(ValueError, match="Use at most 3,255 steps"):
        studio.weights(wide, WeightsConfig(steps=10_000))
    with pytest.raises(ValueError, match="too much work"):
        studio.sweep(small, [0.2, 0.4, 0.6], WeightsConfig(steps=5_000))
    assert not (studio.data_root / "cache" / "weights").exists()
    assert len(studio.weights(small, WeightsConfig(steps=300)).history) == 300  # within the bound: runs


def test_the_command_line_has_no_request_limits(data_root):
    cli = Workbench(data_root, confine=False)
    assert cli.limits is None
    assert cli.map_layout(FEATURES, "pca", 10**8).coords.shape == (20, 2)  # capped by the data, not refused


def test_limits_can_be_changed(data_root):
    wb = Workbench(data_root, limits=RequestLimits(max_weight_steps=3))
    with pytest.raises(ValueError, match="between 1 and 3"):
        wb.weights(FEATURES, WeightsConfig(steps=4))
    assert len(wb.weights(FEATURES, WeightsConfig(steps=3)).history) == 3
