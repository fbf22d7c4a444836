"""The Train tab in headless Chromium starts a flow-matching run (and a class-balanced one beside the
baseline): the runs table names the model and the scheme, the loss chart and the sample grids fill in."""

import pytest

from core.training.config import TrainConfig
from tests.ui.launch import ARTIFACTS, BROWSER_TEST, chromium, launched_studio, open_page

TIMEOUT_MS = 60_000

pytestmark = BROWSER_TEST


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    with launched_studio(root, per_class=30, steps=5, extra_tabs=True) as demo, chromium() as browser:
        yield open_page(browser, demo.local_url, TIMEOUT_MS)


def _number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input")
    box.fill(str(value))
    box.press("Tab")


def test_the_train_tab_starts_a_flow_run(page):
    page.get_by_role("tab", name="Train").click()
    page.locator("#dw-train-model label").filter(has_text="Flow matching").click()
    flow_steps = TrainConfig.preset("quick", model="flow").steps  # the model's own preset fills the fields first
    page.wait_for_function(f"() => document.querySelector('#dw-train-steps input').value == '{flow_steps}'")
    page.locator("#dw-train-schemes label").filter(has_text="class-balanced").click()
    _number(page, "dw-train-steps", 4)
    _number(page, "dw-train-batch", 16)
    page.locator("#dw-train-start").click()
    page.locator("#dw-train-message").get_by_text("Started 2 run(s)").wait_for()
    page.wait_for_function("() => (document.querySelector('#dw-runs').innerText"
                           ".match(/finished 4 steps/g) || []).length == 2", timeout=180_000)
    table = page.locator("#dw-runs").inner_text()
    assert table.count("flow") >= 2 and "class-balanced" in table and "uniform" in table, table
    page.wait_for_function("() => { const gd = document.querySelector('#dw-losses .js-plotly-plot');"
                           " return gd && gd.data && gd.data.length == 4 && gd.data.every(t => t.x.length > 0); }")
    page.locator("#dw-train-grids img").nth(1).wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "e2e-train-flow.png"), full_page=True)


def test_the_weights_tab_shows_every_scheme_side_by_side(page):
    page.get_by_role("tab", name="Weights").click()
    page.get_by_text("Other weightings side by side").click()
    page.locator("#dw-schemes-compare").click()
    page.locator("#dw-schemes-table").get_by_text("ridge leverage").wait_for(timeout=120_000)
    table = page.locator("#dw-schemes-table").inner_text()
    for name in ("uniform (baseline)", "diversity weights", "class-balanced", "inverse density (kNN)"):
        assert name in table, table
    assert "mass per class" in table and "× uniform" in table
    page.locator("#dw-schemes-table").screenshot(path=str(ARTIFACTS / "e2e-weights-schemes.png"))
