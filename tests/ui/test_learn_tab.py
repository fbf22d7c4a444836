"""The Learn tab's handlers, called directly: the example's numbers and messages, the stepped runs."""

import re

import numpy as np

from core.diversity import playground as pg
from divweights_ui import learn_tab as L


def test_example_view_scores_and_explains():
    _, text = L.example_view(pg.PAPER_K.tolist(), [[0.25] * 4])
    assert "Vendi Score 1.7548" in text and "2-item reduction" in text
    _, text = L.example_view(pg.PAPER_K.tolist(), [[0.5, 1 / 6, 1 / 6, 1 / 6]])
    assert "Vendi Score 2.0000" in text


def test_example_view_says_what_is_wrong():
    assert "Not symmetric" in L.example_view([[1, 0.3], [0.2, 1]], [[0.5, 0.5]])[1]
    assert "sum to 1" in L.example_view(pg.PAPER_K.tolist(), [[0.5, 0.5, 0.5, 0.5]])[1]
    assert "number" in L.example_view([[1, "a"], ["a", 1]], [[0.5, 0.5]])[1]


def test_example_run_reaches_the_balanced_solution():
    frames = list(L.example_run(pg.PAPER_K.tolist(), 1.0))
    p = np.array(frames[-1][0][0])
    np.testing.assert_allclose(p, pg.PAPER_P_BALANCED, atol=5e-3)
    assert "step 100 of 100" in frames[-1][2]


def test_mixture_frames_move_the_mass():
    frames = list(L.mixture_frames(2, 0.9, 0.35, 300, 1.0, 1.0, 0.5, 0))
    assert len(frames) == 1 + 100 // L.FRAME_EVERY
    first = re.search(r"weighted \*\*(\d+)% / (\d+)%", frames[0][2]).groups()
    last = re.search(r"weighted \*\*(\d+)% / (\d+)%", frames[-1][2]).groups()
    assert first == ("90", "10") and int(last[1]) > 25 and "steps/s" in frames[-1][2]
