import contextlib
from pathlib import Path

import pytest

from divweights_ui import handlers as h
from divweights_ui.layout import build_demo
from divweights_ui.serving import guard_first, launch_kwargs

CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium (tools/install_chromium.sh)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # screenshots (gitignored)
# the pytestmark of every browser test module
BROWSER_TEST = [pytest.mark.slow,
                pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium (/usr/bin/chromium) is not installed")]


@contextlib.contextmanager
def chromium():
    """Debian's Chromium, headless, driven by Playwright (the test skips without playwright)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str, timeout_ms: int = 60_000, height: int = 1000, **options):
    """A 1400-px-wide page of `url` whose waits time out after timeout_ms."""
    page = browser.new_page(viewport={"width": 1400, "height": height}, **options)
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    return page


@contextlib.contextmanager
def launched_studio(root, per_class: int, steps: int, extra_tabs: bool = False, wait: bool = True,
                    origins: frozenset[str] = frozenset()):
    """The studio (digits 0/1 start set) served on 127.0.0.1 with the app's own launch settings;
    extra_tabs adds Train and Compare; wait: serve only once the start set is ready; origins: as
    app.py's --allow-origin (normalised, serving.check_origins)."""
    demo = build_demo(root, h.StartupChoice("digits", (0, 1), per_class, steps=steps), extra_tabs=extra_tabs)
    if wait:
        assert demo.start_set.wait(timeout=300), "the start dataset was not prepared"
    demo.queue().launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True,
                        **launch_kwargs(root, "127.0.0.1", origins=origins))
    guard_first(demo)
    try:
        yield demo
    finally:
        demo.close()


def slow_down_weights(monkeypatch, seconds_per_step: float) -> None:
    """The studio runs in the test's process: make each of its optimiser steps take at least this long,
    so a computation is still running while a test looks at it (the real one finishes in a second)."""
    import time

    from core import workbench

    real = workbench.sweep

    def slowly(features, gammas, config, cache_dir=None, on_step=None, should_stop=None):
        def step(row):
            time.sleep(seconds_per_step)
            if on_step is not None:
                on_step(row)

        return real(features, gammas, config, cache_dir, step, should_stop)

    monkeypatch.setattr(workbench, "sweep", slowly)
