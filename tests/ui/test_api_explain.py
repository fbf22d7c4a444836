"""The new studio actions through gradio_client, by their stable api_names: suggest_gamma, why_weight,
modes, browse_weights, learn_example, learn_example_run, learn_mixture."""

import pytest

from divweights_ui import handlers as h
from tests.ui.launch import launched_studio

gradio_client = pytest.importorskip("gradio_client")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with launched_studio(tmp_path_factory.mktemp("data"), per_class=30, steps=6) as demo:
        yield gradio_client.Client(demo.local_url, verbose=False)


def test_new_actions_answer(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/suggest_gamma", "/why_weight", "/modes", "/browse_weights", "/learn_example", "/learn_example_run",
            "/learn_mixture"} <= names
    client.predict(h.SOURCES[0], "digits", "2, 7", 25, 1, None, "", "pixels", api_name="/load_dataset")
    client.predict(0.8, 15, 0.1, api_name="/compute_weights")

    gamma, _, text = client.predict(30, 0, 15, 0.1, api_name="/suggest_gamma")
    assert 0 <= gamma <= 1 and f"Suggested γ = {gamma:.2f}" in text and "<" not in text

    text, pictures = client.predict(3, 4, api_name="/why_weight")
    assert "Image #3" in text and len(pictures) == 5

    _, pictures, text = client.predict(2, 4, api_name="/modes")
    assert len(pictures["value"]) == 8 and pictures["columns"] == 4 and "mode 1:" in text  # one row per mode

    pictures, page, text = client.predict("lowest weight first", "all classes", 2, api_name="/browse_weights")
    assert page == 2 and len(pictures) == 2 and "Page **2 of 2**" in text


def _table(rows):
    return {"headers": [f"item {i + 1}" for i in range(len(rows[0]))], "data": rows}


def test_learn_actions_answer(client):
    _, text = client.predict(_table([[1, 0], [0, 1]]), _table([[0.5, 0.5]]), api_name="/learn_example")
    assert "Vendi Score 2.0000" in text
    _, text = client.predict(_table([[1, 0.5], [0.4, 1]]), _table([[0.5, 0.5]]), api_name="/learn_example")
    assert "Not symmetric" in text
    p_table, _, text = client.predict(_table([[1, 0], [0, 1]]), 1.0, api_name="/learn_example_run")
    assert "step 100 of 100" in text
    _, _, text = client.predict(2, 0.9, 0.35, 200, 0.0, 1.0, 0.5, 0, api_name="/learn_mixture")
    assert "weighted **90% / 10%**" in text and "step 100 of 100" in text


def test_suggest_gamma_refusals_reach_the_client_as_sentences(client):
    """Out-of-range numbers used to fail gradio's own bounds check inside the job-limit validator, and
    gradio_client then saw a bare "400 Bad Request"; now each is the handler's sentence."""
    client.predict(h.SOURCES[0], "digits", "0, 1", 20, 0, None, "", "pixels", api_name="/load_dataset")
    for args, sentence in [((150, 0, 15, 0.1), "minimum ESS must be between 0 and 100%"),
                           ((-5, 0, 15, 0.1), "minimum ESS must be between 0 and 100%"),
                           ((30, -1, 15, 0.1), "largest weight at least 1× uniform"),
                           ((30, 0, 0, 0.1), "steps at least 1"),
                           ((30, 0, 15, -1), "learning rate above 0")]:
        with pytest.raises(gradio_client.exceptions.AppError, match=sentence):
            client.predict(*args, api_name="/suggest_gamma")
