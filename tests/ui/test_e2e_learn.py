"""The Learn tab in headless Chromium: the paper's example is on the page, and moving γ moves the toy
mixture's mass between its modes (90/10 stays at γ = 0; γ = 1 gives the small mode far more)."""

import re

import pytest

from tests.ui.launch import ARTIFACTS, BROWSER_TEST, chromium, launched_studio, open_page

pytestmark = BROWSER_TEST

MASS = "#dw-learn-mass"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with launched_studio(tmp_path_factory.mktemp("data"), per_class=20, steps=5) as demo, chromium() as browser:
        yield open_page(browser, demo.local_url, 90_000)


def _set_gamma(page, value: str) -> None:
    box = page.locator("#dw-learn-gamma input[type=number]")
    box.fill(value)
    box.press("Enter")
    box.blur()


def _finished_mass(page, gamma: str) -> tuple[float, float, float]:
    """Wait for the run at `gamma` to reach its last step -> (big mode %, small mode %, steps/s)."""
    page.wait_for_function(
        "(g) => { const t = document.querySelector('#dw-learn-mass').innerText;"
        " return t.includes('step 100 of 100, γ = ' + g) && t.includes('steps/s'); }", arg=gamma)
    text = page.locator(MASS).inner_text()
    big, small = (float(v) for v in re.search(r"weighted (\d+)% / (\d+)%", text).groups())
    rate = float(re.search(r"([\d,]+) steps/s", text).group(1).replace(",", ""))
    return big, small, rate


def test_the_papers_example_is_explained(page):
    page.get_by_role("tab", name="Learn").click()
    example = page.locator("#dw-learn-example")
    example.get_by_text("Vendi Score 1.7548").wait_for()
    assert "2-item reduction" in example.inner_text()
    page.locator("#dw-learn-run-example").click()
    example.get_by_text("step 100 of 100").wait_for()
    assert "Vendi Score 2.0000" in example.inner_text()  # the balanced solution, found by Algorithm 1


def test_the_balanced_button_shows_exactly_2(page):
    """p = (½, ⅙, ⅙, ⅙) fills exact fractions and the lesson's number appears (it used to be refused:
    "p must be non-negative numbers that sum to 1 (they sum to 1)")."""
    page.get_by_role("tab", name="Learn").click()
    page.locator("#dw-learn-reset").click()  # the paper's K and uniform p, whatever ran before
    example = page.locator("#dw-learn-example")
    example.get_by_text("Vendi Score 1.7548").wait_for()
    page.locator("#dw-learn-balanced").click()
    example.get_by_text("Vendi Score 2.0000").wait_for()
    assert "⚠️" not in example.inner_text() and "sum to" not in example.inner_text()
    assert "1/6" in page.locator("#dw-learn-p").inner_text()
    page.screenshot(path=str(ARTIFACTS / "learn-0-balanced.png"), full_page=True)


def test_moving_gamma_moves_the_mixtures_mass(page):
    page.get_by_role("tab", name="Learn").click()
    page.locator(MASS).get_by_text("uniform 90% / 10%").wait_for()  # opening the tab ran the default γ
    _set_gamma(page, "0")
    big0, small0, _ = _finished_mass(page, "0.00")
    assert (big0, small0) == (90.0, 10.0)  # γ = 0: the weights stay uniform
    page.screenshot(path=str(ARTIFACTS / "learn-1-gamma0.png"), full_page=True)
    _set_gamma(page, "1")
    big1, small1, rate = _finished_mass(page, "1.00")
    assert small1 > 25.0 and big1 < 75.0  # the minority mode's mass moved towards balance
    assert rate > 0
    page.screenshot(path=str(ARTIFACTS / "learn-2-gamma1.png"), full_page=True)
    print(f"Learn tab: {rate:.0f} steps/s shown at n = 500 (shared machine)")
