"""How the studio looks at a laptop's width (1280 px), in headless Chromium: the runs table keeps every
column on screen with a short header row; "Images per class" reads blank (all), not 0; in dark mode the
charts are dark with light text, and gallery captions with long class names are shown whole. Screenshots
go to test-artifacts/ (gitignored)."""

import numpy as np
import pytest
from PIL import Image

from core.data.datasets import DatasetSpec
from core.training import runs
from core.training.config import TrainConfig
from core.workbench import Workbench
from tests.ui.launch import ARTIFACTS, BROWSER_TEST, chromium, launched_studio

pytestmark = BROWSER_TEST
WIDTH = 1280
LONG_MESSAGE = ("failed: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total capacity; "
                "13.2 GiB already allocated); lower the batch size")


def _runs_to_list(root) -> None:
    """Three run folders (never started): a long upload name with a long failure message, and two γ."""
    wb = Workbench(root)
    config = TrainConfig.preset("quick", steps=2, batch_size=8, device="cpu")
    spec = DatasetSpec("digits", (0, 1), 20)
    failed = wb.create_run(spec, np.full(40, 1 / 40), config, label="gamma=0.25 (ViT-L-14/openai)", preset="quick",
                           name="my-holiday-photos-2024-upload.zip-divw-g0.25")
    runs.write_status(failed, "failed", step=0, steps=2, message=LONG_MESSAGE)
    for gamma in (0.5, 0.8):
        wb.create_run(spec, np.full(40, 1 / 40), config, label=f"gamma={gamma} (ViT-L-14/openai)", preset="quick",
                      name=f"digits-divw-g{gamma}")


def _birds(root) -> None:
    """A folder of 24 noise images in two classes with long names (captions used to end in "…")."""
    rng = np.random.default_rng(0)
    for name in ("blue_jay_in_flight", "northern_cardinal_red"):
        folder = root / "birds" / name
        folder.mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")


@pytest.fixture(scope="module")
def browser_and_url(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    _runs_to_list(root)
    _birds(root)
    # every image of digits 0 and 1 (images per class: all), as `python app.py` starts
    with launched_studio(root, per_class=None, steps=10, extra_tabs=True) as demo, chromium() as browser:
        yield browser, demo.local_url


def _page(browser, url, theme: str = "light"):
    page = browser.new_page(viewport={"width": WIDTH, "height": 900}, color_scheme=theme)
    page.set_default_timeout(60_000)
    page.goto(url + ("?__theme=dark" if theme == "dark" else ""))
    page.locator("#dw-summary").get_by_text("360 images").wait_for()
    return page


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"look-{name}.png"), full_page=True)


def test_runs_table_fits_a_1280_px_page(browser_and_url):
    browser, url = browser_and_url
    page = _page(browser, url)
    page.get_by_role("tab", name="Train").click()
    page.locator("#dw-runs [role=gridcell]").get_by_text("CUDA out of memory").wait_for()
    _shot(page, "train-1280")
    header = page.evaluate("""() => {
        const cells = [...document.querySelectorAll('#dw-runs th[role=columnheader]')];
        const span = document.querySelector('#dw-runs th[role=columnheader] span');
        const style = getComputedStyle(span);
        const line = style.lineHeight === 'normal' ? 1.2 * parseFloat(style.fontSize) : parseFloat(style.lineHeight);
        const th = getComputedStyle(cells[0]);
        return {titles: cells.map(c => c.getAttribute('title')), rights: cells.map(c => c.getBoundingClientRect().right),
                row: document.querySelector('#dw-runs thead tr').getBoundingClientRect().height,
                line: line, padding: parseFloat(th.paddingTop) + parseFloat(th.paddingBottom),
                viewport: document.documentElement.clientWidth}; }""")
    assert header["titles"] == ["run", "state", "step", "weights", "preset", "message", "time left", "model"]
    assert all(right <= header["viewport"] for right in header["rights"]), header
    assert header["row"] <= 2 * header["line"] + header["padding"] + 4, header  # two text lines at most
    page.close()


def test_images_per_class_shows_all_not_zero(browser_and_url):
    browser, url = browser_and_url
    page = _page(browser, url)
    field = page.locator("#dw-per-class textarea, #dw-per-class input")
    assert field.input_value() == "" and field.get_attribute("placeholder") == "all"
    page.close()


def _luminance(colour: str) -> float:
    """'rgb(r, g, b)' or 'rgba(r, g, b, a)' -> mean of r, g, b (0 black .. 255 white)."""
    return sum(float(v) for v in colour[colour.index("(") + 1:colour.index(")")].split(",")[:3]) / 3


def _wait_idle(page) -> None:
    page.wait_for_function("() => !document.body.innerText.includes('processing |')")


def test_dark_mode_charts_and_whole_captions(browser_and_url):
    browser, url = browser_and_url
    page = _page(browser, url, theme="dark")
    _wait_idle(page)  # the start set's panels are drawn (a load racing them is another matter)
    page.get_by_role("tab", name="Inspect").click()
    page.locator("#dw-hist .main-svg").first.wait_for()
    chart = page.evaluate("""() => {
        const svg = document.querySelector('#dw-hist .main-svg');
        let box = svg, behind = 'rgba(0, 0, 0, 0)';  // the first painted background under the chart
        while (box && behind.startsWith('rgba') && behind.endsWith(', 0)')) { behind = getComputedStyle(box).backgroundColor; box = box.parentElement; }
        const title = document.querySelector('#dw-hist .gtitle');
        return {svg: getComputedStyle(svg).backgroundColor, plot: getComputedStyle(document.querySelector('#dw-hist rect.bg')).fillOpacity,
                behind: behind, text: getComputedStyle(title).fill}; }""")
    _shot(page, "dark-inspect")
    assert chart["svg"] == "rgba(0, 0, 0, 0)" and float(chart["plot"]) == 0, chart  # see-through
    assert _luminance(chart["behind"]) < 80 and _luminance(chart["text"]) > 150, chart  # light text on dark
    page.get_by_role("tab", name="Dataset").click()
    page.get_by_label("Folder under the data root").check()
    page.get_by_label("Folder under the data root (").fill("birds")
    page.get_by_label("Subfolders are classes").check()
    page.locator("#dw-load").click()
    page.locator("#dw-summary").get_by_text("24 images", exact=True).wait_for()
    page.wait_for_function("() => document.querySelectorAll('#dw-preview .caption-label').length === 24 && "
                           "[...document.querySelectorAll('#dw-preview img')].every(img => img.complete)")
    _shot(page, "dark-dataset-captions")
    captions = page.evaluate("""() => {
        const box = document.querySelector('#dw-preview .grid-wrap').getBoundingClientRect();
        return [...document.querySelectorAll('#dw-preview .gallery-item')].map(item => {
            const caption = item.querySelector('.caption-label'), tile = item.getBoundingClientRect(),
                  text = caption.getBoundingClientRect();
            return {text: caption.textContent, wide: caption.scrollWidth <= caption.clientWidth,
                    inside: text.left >= tile.left && text.right <= tile.right + 0.5 && text.bottom <= tile.bottom + 0.5,
                    column_inside: tile.right <= box.right + 0.5}; }); }""")
    assert any("northern_cardinal_red" in c["text"] for c in captions)
    assert all(c["wide"] and c["inside"] for c in captions), [c for c in captions if not (c["wide"] and c["inside"])]
    assert all(c["column_inside"] for c in captions)  # the last column is inside the gallery's box
    page.close()
