"""Handlers that explain weights (why, modes, browse, health) and Suggest γ, called directly (no server)."""

import numpy as np
import pytest

from core.workbench import Workbench
from divweights_ui import explain_handlers as e
from divweights_ui import handlers as h


@pytest.fixture(scope="module")
def ready(tmp_path_factory):
    wb = Workbench(tmp_path_factory.mktemp("data"))
    session = h.initial_session(wb, h.StartupChoice("digits", (0, 1), 30, steps=20))
    return wb, session


def test_caption_index():
    assert e.index_from_caption("#12 · 0.31× · T-shirt") == 12 and e.index_from_caption("mode 1") is None


def test_why_weight_explains_and_shows_neighbours(ready):
    wb, session = ready
    text, pictures = e.why_weight(session, 3, 4, wb=wb)
    assert text.startswith("**Image #3.**") and "Vendi Score" in text
    assert len(pictures) == 5 and pictures[0][1].startswith("#3 · this one") and "sim " in pictures[1][1]
    for bad in (None, -1, 60, "x"):
        with pytest.raises(Exception, match="0 to 59|between 0 and 59"):
            e.why_weight(session, bad, 4, wb=wb)


def test_modes_rows_and_text(ready):
    wb, session = ready
    figure, pictures, text = e.show_modes(session, 3, 5, wb=wb)
    assert len(pictures["value"]) == 15 and pictures["columns"] == 5
    assert pictures["value"][5][1].startswith("M2 · #") and "mode 1:" in text


def test_browse_pages_and_filters(ready):
    wb, session = ready
    pictures, page, text = e.browse(session, e.ORDERS[0], e.ALL_CLASSES, 1, wb=wb)
    assert len(pictures) == 48 and page == 1 and "Page **1 of 2**" in text
    pictures, page, _ = e.browse_step(session, e.ORDERS[1], "1", 1, 1, wb=wb)
    assert page == 1 and len(pictures) == 30  # one class: a single page, clipped
    choices = e.class_choices(session)["choices"]
    assert choices[0] == e.ALL_CLASSES and len(choices) == 3


def test_health_note():
    wb = Workbench(None)
    assert e.health_note(wb, np.full(500, 1 / 500)) == ""
    p = np.full(500, 1e-6)
    p[:5] = (1 - p[5:].sum()) / 5
    assert "Weight health" in e.health_note(wb, p) and "Suggest γ" in e.health_note(wb, p)


def test_suggest_streams_then_sets_the_slider(ready):
    wb, session = ready
    frames = list(e.suggest(session, 40, 0, 20, 0.1, wb=wb))
    final = frames[-1]
    assert isinstance(final[1], float) and "Suggested γ" in final[3]
    key = h.weights_key(final[1], 20, 0.1)
    assert key in session.weights and 1 / np.sum(session.weights[key].p ** 2) >= 0.4 * 60
    with pytest.raises(Exception, match="and/or"):
        list(e.suggest(session, 0, 0, 20, 0.1, wb=wb))
    with pytest.raises(Exception, match="between 0 and 100"):
        list(e.suggest(session, 250, 0, 20, 0.1, wb=wb))


def test_why_and_export_share_one_explanation_per_weights(ready, monkeypatch):
    wb, session = ready  # seconds at n = 60,000: computed at the first Explain, reused by the next and by Export
    calls = []
    real = wb.explain_weights
    monkeypatch.setattr(wb, "explain_weights", lambda *a: calls.append(1) or real(*a))
    session.explained = {}
    e.why_weight(session, 3, 4, wb=wb)
    e.why_weight(session, 9, 4, wb=wb)
    h.export(session, 32, wb=wb)
    assert len(calls) == 1 and list(session.explained) == [session.current_key]


def test_first_explain_of_new_weights_says_it_is_preparing_then_answers(ready):
    wb, session = ready  # seconds at n = 60,000: the page hears at once, the explanation follows
    session.explained = {}
    updates = list(e.why_weight_streamed(session, 3, 4, wb=wb))
    assert updates[0][0] == e.PREPARING_WHY and updates[-1][0].startswith("**Image #3.**")
    assert list(session.explained) == [session.current_key]
    assert len(list(e.why_weight_streamed(session, 5, 4, wb=wb))) == 1  # kept: answered at once
    files = list(h.export_streamed(session, 32, wb=wb))
    assert len(files) == 1 and files[0][0][0].endswith(".csv")
    session.explained = {}
    with pytest.raises(Exception, match="0 to 59"):
        next(e.why_weight_streamed(session, 60, 4, wb=wb))  # said before any wait
    assert session.explained == {}
