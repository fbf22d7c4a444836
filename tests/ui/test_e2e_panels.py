"""Panels that must not lie, in headless Chromium: another built-in resets the class fields, panels
that depend on the weights say they are out of date while new ones compute, Stop says where it
stopped, and the notices stay readable in dark mode."""

import pytest

from tests.ui.launch import ARTIFACTS, BROWSER_TEST, chromium, launched_studio, open_page, slow_down_weights

pytestmark = BROWSER_TEST


@pytest.fixture(scope="module")
def browser_and_url(tmp_path_factory):
    with launched_studio(tmp_path_factory.mktemp("data"), per_class=60, steps=10) as demo, chromium() as browser:
        yield browser, demo.local_url


def _page(browser, url, **options):
    page = open_page(browser, url, **options)
    page.locator("#dw-summary").get_by_text("120 images").wait_for()
    return page


def _choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option).first.click()


def test_another_built_in_resets_the_class_fields(browser_and_url):
    browser, url = browser_and_url
    page = _page(browser, url)
    _choose(page, "dw-builtin", "fashion-mnist")
    page.wait_for_function("() => document.querySelector('#dw-classes textarea, #dw-classes input').value === '0, 1'")
    assert page.locator("#dw-per-class textarea, #dw-per-class input").input_value() == "1000"
    _choose(page, "dw-builtin", "digits")
    page.wait_for_function("() => document.querySelector('#dw-classes textarea, #dw-classes input').value === ''")
    assert page.locator("#dw-per-class textarea, #dw-per-class input").input_value() == ""
    page.close()


@pytest.fixture
def slow_motion_weights(monkeypatch):
    """Optimiser steps of 20 ms, so a computation is still running while the test looks at the page
    (the real one would finish in a second)."""
    slow_down_weights(monkeypatch, 0.02)


@pytest.mark.xfail(strict=False, reason="KNOWN BUG, open in issue 23 item 8: fails in the full suite only (order-dependent since the 60k-scale map and shared-data merges); the cause is not found yet")
def test_panels_say_they_are_out_of_date_and_stop_says_where_it_stopped(browser_and_url, slow_motion_weights):
    browser, url = browser_and_url
    page = _page(browser, url)
    page.get_by_role("tab", name="Weights").click()
    page.locator("#dw-numbers").get_by_text("done").wait_for()
    box = page.locator("#dw-steps input")
    box.fill("10000")
    box.press("Tab")
    page.locator("#dw-compute").click()
    page.locator("#dw-numbers").get_by_text("optimising").wait_for()
    page.get_by_role("tab", name="Inspect").click()
    page.locator("#dw-stats").get_by_text("Out of date").wait_for()  # not the old weights' numbers
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "panels-1-out-of-date.png"), full_page=True)
    page.get_by_role("tab", name="Weights").click()
    page.locator("#dw-stop").click()
    page.locator("#dw-numbers").get_by_text("Stopped at step").wait_for()
    assert "still using the previous weights (γ = 0.80" in page.locator("#dw-numbers").inner_text()
    page.get_by_role("tab", name="Inspect").click()
    page.locator("#dw-stats").get_by_text("Effective sample size").wait_for()  # the weights in use again
    page.screenshot(path=str(ARTIFACTS / "panels-2-stopped.png"), full_page=True)
    page.close()


def test_notices_are_readable_in_dark_mode(browser_and_url):
    browser, url = browser_and_url
    page = _page(browser, url, color_scheme="dark")
    page.locator("#dw-notice").get_by_text("raw pixels").wait_for()
    colours = page.evaluate("""() => { const p = document.querySelector('#dw-notice p'); const s = getComputedStyle(p);
        return [s.backgroundColor, s.color]; }""")
    luminance = [sum(int(v) for v in c[c.index("(") + 1:c.index(")")].split(",")[:3]) / 3 for c in colours]
    assert luminance[1] - luminance[0] > 100, colours  # light text on a dark panel, not light on light
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "panels-3-dark.png"), full_page=True)
    page.close()
