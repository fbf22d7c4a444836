"""A first start in headless Chromium: the page is served before the start dataset exists, shows the
preparation's progress, and fills in by itself when the dataset is ready."""

import threading

from divweights_ui import startup
from tests.ui.launch import ARTIFACTS, BROWSER_TEST, chromium, launched_studio, open_page

pytestmark = BROWSER_TEST


def test_the_page_is_served_first_and_fills_in_when_the_start_set_is_ready(tmp_path, monkeypatch):
    release = threading.Event()
    real = startup.initial_session

    def held_back(*args, **kwargs):  # a slow first start: the preparation waits for the test
        release.wait(120)
        return real(*args, **kwargs)

    monkeypatch.setattr(startup, "initial_session", held_back)
    with launched_studio(tmp_path / "data", per_class=20, steps=5, wait=False) as demo, chromium() as browser:
        page = open_page(browser, demo.local_url, height=900)
        page.locator("#dw-notice").get_by_text("Preparing the start dataset").wait_for()
        assert not demo.start_set.ready
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "startup-1-preparing.png"), full_page=True)
        release.set()
        page.locator("#dw-summary").get_by_text("40 images").wait_for()
        page.locator("#dw-notice").get_by_text("raw pixels").wait_for()
        page.get_by_role("tab", name="Weights").click()
        page.locator("#dw-numbers strong >> nth=1").wait_for()
        page.locator("#dw-live .js-plotly-plot .scatterlayer .trace").first.wait_for()  # the chart is drawn
        page.screenshot(path=str(ARTIFACTS / "startup-2-ready.png"), full_page=True)
