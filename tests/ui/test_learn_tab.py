"""The Learn tab's handlers, called directly: the example's numbers and messages, the stepped runs."""

import re

import numpy as np
import pytest

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


def test_the_balanced_button_fills_exact_fractions_and_reaches_exactly_2():
    """The headline button used to fill 0.5, 0.166667 × 3 and then say "p must … sum to 1 (they sum to 1)"."""
    row = L._fractions(pg.PAPER_P_BALANCED)
    assert row == [["1/2", "1/6", "1/6", "1/6"]]
    _, text = L.example_view(pg.PAPER_K.tolist(), row)
    assert "Vendi Score 2.0000" in text
    _, text = L.example_view(pg.PAPER_K.tolist(), [[0.5, 0.166667, 0.166667, 0.166667]])  # rounded: renormalised
    assert "Vendi Score 2.0000" in text
    _, text = L.example_view([["1", "1/3"], ["1/3", "1"]], [["1/3", "2/3"]])  # fractions in K too
    assert "Vendi Score" in text


@pytest.mark.parametrize("K, p, sentence", [
    (pg.PAPER_K.tolist(), [[float("nan"), 0.5, 0.25, 0.25]], "p must be numbers: entry 1 is blank"),
    (pg.PAPER_K.tolist(), [[-0.5, 0.5, 0.5, 0.5]], "p must not be negative: entry 1 is -0.5"),
    (pg.PAPER_K.tolist(), [[0.5, 0.5, 0.5, 0.5]], "these sum to 2"),
    (pg.PAPER_K.tolist(), [[0.5, 0.25, 0.25]], "one number per item \\(4\\); it has 3"),
    ([[1, 0, 0], [0, 1], [0, 0, 1]], [[0.5, 0.25, 0.25]], "Every row of K needs the same number of entries"),
    ([[1, "x"], ["x", 1]], [[0.5, 0.5]], "finite number"),
])
def test_bad_tables_get_a_true_specific_sentence(K, p, sentence):
    _, text = L.example_view(K, p)
    assert re.search(sentence, text), text
    assert "they sum to 1)" not in text and "sum to 1 (they" not in text


def test_the_sum_is_never_said_to_be_1_when_refused():
    for p in ([0.5, 0.25, 0.2489, 0.0], [0.5, 0.25, 0.2511, 0.0]):  # just outside the tolerance
        _, text = L.example_view(pg.PAPER_K.tolist(), [p])
        total = float(re.search(r"these sum to (\d+(?:\.\d+)?)", text).group(1))
        assert total != 1.0, text


def test_a_large_table_is_refused_at_once():
    import time

    big = np.eye(3000).tolist()
    started = time.perf_counter()
    _, text = L.example_view(big, [[1 / 3000] * 3000])
    assert "too large: the Learn tab takes at most 40 items" in text
    with pytest.raises(Exception, match="too large"):
        next(L.example_run(big, 1.0))
    assert time.perf_counter() - started < 5.0  # it took > 400 s and ~2 GB before
    _, text = L.example_view(np.eye(40).tolist(), [[1 / 40] * 40])
    assert "Vendi Score 40.0000" in text  # the largest accepted size still answers


@pytest.mark.parametrize("args, sentence", [
    ((2, 0.9, 0.35, 300, float("nan"), 1.0, 0.5, 0), "γ must be a number between 0 and 1"),
    ((2, 0.9, 0.35, 300, 1.0, float("nan"), 0.5, 0), "The order q must be a number above 0"),
    ((2, 0.9, 0.35, 300, 1.0, 1.0, float("nan"), 0), "The kernel bandwidth must be a number above 0"),
])
def test_nan_sliders_of_the_mixture_are_named(args, sentence):
    import gradio as gr

    with pytest.raises(gr.Error, match=sentence):
        next(L.mixture_frames(*args))
    with pytest.raises(gr.Error, match="γ must be a number between 0 and 1"):
        next(L.example_run(pg.PAPER_K.tolist(), float("nan")))
