"""The studio's plotly figures follow the page's theme and tell classes apart."""

import numpy as np
import pytest

from divweights_ui import figures


def _map(labels, by_class=True):
    n = len(labels)
    coords = np.random.default_rng(0).standard_normal((n, 2))
    return figures.map_figure(coords, np.arange(n), np.ones(n), labels, [""] * n, "pca", n, by_class=by_class)


@pytest.mark.parametrize("classes", [2, 8, 10, 30])
def test_each_class_gets_its_own_colour(classes):
    labels = [f"class {c}" for c in np.arange(3 * classes) % classes]
    colours = [trace.marker.color for trace in _map(labels).data]
    assert len(colours) == classes and len(set(colours)) == classes
    assert colours == figures.class_colours(classes)  # the same palette whatever the theme


def test_a_class_keeps_its_colour_whichever_images_are_drawn():
    first = {t.name: t.marker.color for t in _map(["cat", "dog", "owl"]).data}
    again = {t.name: t.marker.color for t in _map(["owl", "dog", "cat", "cat"]).data}
    assert first == again


def test_every_figure_has_transparent_backgrounds():
    shown = [_map(["a", "b"]), _map(["a", "b"], by_class=False), figures.empty_figure("nothing yet"),
             figures.class_mass_figure(["a", "b"], np.array([0.5, 0.5]), np.array([0.3, 0.7])),
             figures.histogram_figure(np.array([1, 2]), np.array([-1.0, 0.0, 1.0])),
             figures.progress_figure([{"step": 1, "vs": 2.0, "ess": 10.0}], 1.5)]
    for figure in shown:
        layout = figure.layout.template.layout
        assert (layout.paper_bgcolor, layout.plot_bgcolor) == (figures.TRANSPARENT, figures.TRANSPARENT)
        assert figure.layout.paper_bgcolor in (None, figures.TRANSPARENT)  # nothing paints over the template
