"""The studio in headless Chromium: open, wait for the default dataset, move γ, compute, see the VS
change and both galleries, hover the map (thumbnail tooltip) and lasso a region (selection gallery);
then train a baseline and a DivW model from the Train tab and evaluate both on the Compare tab.

Screenshots go to test-artifacts/ (gitignored). Skips only when Debian's chromium is missing.
"""

import io
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from tests.ui.launch import ARTIFACTS, BROWSER_TEST, chromium, launched_studio, open_page

TIMEOUT_MS = 60_000

pytestmark = BROWSER_TEST


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    with launched_studio(root, per_class=60, steps=10, extra_tabs=True) as demo:
        yield demo.local_url


@pytest.fixture(scope="module")
def page(url):
    with chromium() as browser:
        yield open_page(browser, url, TIMEOUT_MS)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"e2e-{name}.png"), full_page=True)


def _tab(page, title: str) -> None:
    page.get_by_role("tab", name=title).click()


def _wait_idle(page) -> None:
    """Until no component shows gradio's 'processing' status."""
    page.wait_for_function("() => !document.body.innerText.includes('processing |')")


VS_WEIGHTED = "#dw-numbers strong >> nth=1"  # "uniform **a** → weighted **b**"


def _vs_weighted(page) -> float:
    return float(page.locator(VS_WEIGHTED).inner_text())


def _grids_fit(page, elem_id: str, count: int) -> None:
    """`count` run grids shown, each with its caption inside the gallery's box, two at most a row (a
    single grid used to span the page and be cut off, caption and all)."""
    shown = page.evaluate("""id => { const wrap = document.querySelector(`#${id} .grid-wrap`).getBoundingClientRect();
        return [...document.querySelectorAll(`#${id} .gallery-item`)].map(item => {
            const r = item.getBoundingClientRect(), cap = item.querySelector('.caption-label');
            return {bottom: r.bottom - wrap.top, width: r.width, caption: cap ? cap.innerText : '',
                    caption_bottom: cap ? cap.getBoundingClientRect().bottom - wrap.top : 1e9,
                    box_height: wrap.height, box_width: wrap.width}; }); }""", elem_id)
    assert len(shown) == count, shown
    for item in shown[:2]:  # the first row is visible without scrolling
        assert item["caption"].strip() and item["caption_bottom"] <= item["box_height"], item
        assert item["bottom"] <= item["box_height"] and item["width"] <= item["box_width"] / 2 + 1, item


@pytest.mark.xfail(strict=False, reason="KNOWN BUG, open in issue 23 item 8: fails in the full suite only (order-dependent since the 60k-scale map and shared-data merges); the cause is not found yet")
def test_studio_end_to_end(page):
    # 1. the default dataset is already loaded, embedded and weighted
    page.locator("#dw-summary").get_by_text("120 images").wait_for()
    page.locator("#dw-notice").get_by_text("raw pixels").wait_for()
    _shot(page, "1-dataset")

    _tab(page, "Inspect")
    page.locator("#dw-stats").get_by_text("Effective sample size").wait_for()
    stats_before = page.locator("#dw-stats").inner_text().split("\n")[0]  # the ESS line

    # 2. move γ, compute, the weighted VS changes and streams to completion
    _tab(page, "Weights")
    page.locator(VS_WEIGHTED).wait_for()
    before = _vs_weighted(page)
    gamma_box = page.locator("#dw-gamma input[type=number]")
    gamma_box.fill("1")
    gamma_box.press("Enter")
    page.locator("#dw-compute").click()
    page.locator("#dw-numbers").get_by_text("γ = 1.00").wait_for()
    page.locator("#dw-numbers").get_by_text("done").wait_for()
    after = _vs_weighted(page)
    assert after > before  # γ=1 pushes diversity further than the default 0.8
    _shot(page, "2-weights")

    # 3. both galleries render again for the new weights, with index/weight/label captions
    _tab(page, "Inspect")
    page.wait_for_function("(before) => { const s = document.querySelector('#dw-stats');"
                           " return s && s.innerText.includes('Effective') && !s.innerText.includes(before); }", arg=stats_before)
    _wait_idle(page)
    for gallery in ("#dw-top", "#dw-bottom"):
        page.locator(f"{gallery} img").first.wait_for()
        assert page.locator(f"{gallery} img").count() == 12
    assert re.search(r"#\d+ · \d+\.\d\d× · [01]", page.locator("#dw-top").inner_text())
    _shot(page, "3-inspect")

    # 4. hovering a dot shows its thumbnail; a lasso fills the selection gallery
    _tab(page, "Map")
    page.locator("#dw-map .js-plotly-plot .scatterlayer, #dw-map .js-plotly-plot canvas").first.wait_for()
    _wait_idle(page)  # a redraw chained to the new weights may still replace the figure
    tip = page.locator("#dw-tip")
    for _ in range(10):  # the dot is found where the figure now draws it; a figure replaced mid-hover is re-read
        page.wait_for_function("() => { const gd = document.querySelector('#dw-map .js-plotly-plot');"
                               " return gd && gd.__dwBound && gd._fullLayout && gd._fullData && gd._fullData[0]"
                               " && gd._fullData[0].x.length > 0; }")
        point = page.evaluate("""() => {
            const gd = document.querySelector('#dw-map .js-plotly-plot');
            const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
            const i = 0;
            return {x: box.left + xa._offset + xa.l2p(gd._fullData[0].x[i]), y: box.top + ya._offset + ya.l2p(gd._fullData[0].y[i]),
                    left: box.left + xa._offset, top: box.top + ya._offset, w: xa._length, h: ya._length};
        }""")
        page.mouse.move(point["x"] + 40, point["y"] + 40)
        page.mouse.move(point["x"], point["y"], steps=5)
        try:
            tip.wait_for(state="visible", timeout=10_000)
            break
        except Exception:  # playwright's TimeoutError: hover again on the figure as it is now
            continue
    tip.wait_for(state="visible")
    _wait_idle(page)
    assert tip.locator("img").count() == 1 and "weight" in tip.inner_text()
    _shot(page, "4-map-hover")

    left, top, w, h = point["left"], point["top"], point["w"], point["h"]
    page.mouse.move(left + 2, top + 2)
    page.mouse.down()
    for x, y in [(left + w - 2, top + 2), (left + w - 2, top + h - 2), (left + 2, top + h - 2), (left + 2, top + 4)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    page.locator("#dw-selected img").first.wait_for()
    _wait_idle(page)
    assert re.match(r"\d", page.locator("#dw-selection textarea, #dw-selection input").first.input_value())
    _shot(page, "5-map-selection")

    # typed indices are highlighted on the map (the others dimmed)
    box = page.locator("#dw-selection textarea, #dw-selection input").first
    box.fill("7")
    page.wait_for_function(f"() => {_HIGHLIGHTED} == 1 && document.querySelectorAll('#dw-selected img').length == 1")
    # one image keeps the gallery's cell size (ten a row), not the page's width
    width = page.evaluate("() => document.querySelector('#dw-selected .gallery-item').getBoundingClientRect().width"
                          " / document.querySelector('#dw-selected .grid-wrap').getBoundingClientRect().width")
    assert width < 0.15, width
    box.fill("0-4, 7")
    page.wait_for_function(f"() => {_HIGHLIGHTED} == 6 && document.querySelectorAll('#dw-selected img').length == 6")

    # a click on a histogram bar opens the Map tab with that bar's images selected and highlighted
    _tab(page, "Inspect")
    bar = page.locator("#dw-hist .js-plotly-plot .barlayer .point path").first
    bar.wait_for()
    members = page.evaluate("() => document.querySelector('#dw-hist .js-plotly-plot').data[0].customdata"
                            ".find(cd => cd[1]) [1]")
    first_bar = page.evaluate("() => document.querySelector('#dw-hist .js-plotly-plot').data[0].customdata"
                              ".findIndex(cd => cd[1])")
    bar_path = page.locator("#dw-hist .js-plotly-plot .barlayer .point path").nth(first_bar)
    bar_path.scroll_into_view_if_needed()
    bar_box = bar_path.bounding_box()
    x, y = bar_box["x"] + bar_box["width"] / 2, bar_box["y"] + bar_box["height"] - 2  # plotly's overlay takes the click
    page.mouse.move(x, y - 10)
    page.mouse.move(x, y, steps=3)
    page.mouse.click(x, y)
    page.wait_for_function(f"() => document.querySelector('#dw-selection textarea, #dw-selection input')"
                           f".value == {members!r}")
    expected = len(members.split(","))
    page.wait_for_function(f"() => {_HIGHLIGHTED} == {expected}")
    _wait_idle(page)
    assert page.get_by_role("tab", name="Map").get_attribute("aria-selected") == "true"
    _shot(page, "5b-histogram-bar-on-map")


# points the map highlights (plotly's selectedpoints, summed over its traces)
_HIGHLIGHTED = ("document.querySelector('#dw-map .js-plotly-plot').data"
                ".reduce((n, t) => n + (t.selectedpoints ? t.selectedpoints.length : 0), 0)")


def _number(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def test_train_and_compare_in_the_browser(page):
    # 5. a baseline and one DivW run (the session's γ=1 weights), tiny, on the CPU; they queue
    _tab(page, "Train")
    page.locator("#dw-train-weights label").filter(has_text="γ=1").first.click()
    _number(page, "dw-train-steps", 12)
    _number(page, "dw-train-batch", 16)
    page.locator("#dw-train-start").click()
    page.locator("#dw-train-message").get_by_text("Started 2 run(s)").wait_for()
    page.wait_for_function("() => (document.querySelector('#dw-runs').innerText"
                           ".match(/finished 12 steps/g) || []).length == 2", timeout=180_000)
    page.wait_for_function("() => { const gd = document.querySelector('#dw-losses .js-plotly-plot');"
                           " return gd && gd.data && gd.data.length == 4 && gd.data.every(t => t.x.length > 0); }")
    page.locator("#dw-train-grids img").nth(1).wait_for()
    _grids_fit(page, "dw-train-grids", 2)
    assert "uniform" in page.locator("#dw-runs").inner_text() and "gamma=1" in page.locator("#dw-runs").inner_text()
    _shot(page, "6-train")

    # 6. both runs evaluated side by side: a metrics table and one sample grid per run
    _tab(page, "Compare")  # opening the tab lists the runs trained since the page loaded (no Refresh press)
    page.wait_for_function("() => document.querySelectorAll('#dw-compare-runs input[type=checkbox]').length == 2")
    _wait_idle(page)
    boxes = page.locator("#dw-compare-runs input[type=checkbox]")
    assert boxes.count() == 2 and page.locator("#dw-compare-runs").inner_text().count("(finished)") == 2
    for index in range(2):  # tick both runs with the mouse
        boxes.nth(index).click()
    _number(page, "dw-compare-samples", 200)
    page.locator("#dw-compare-evaluate").click()
    page.locator("#dw-compare-table").get_by_text("wFID").first.wait_for(timeout=180_000)
    _wait_idle(page)
    assert page.locator("#dw-compare-grids img").count() == 2
    _grids_fit(page, "dw-compare-grids", 2)
    table = page.locator("#dw-compare-table").inner_text()
    assert "\nbaseline\t" in table and "DivW gamma=1" in table, table
    _shot(page, "7-compare")

    # 7. one run alone: its grid is as large as in a pair, not stretched past its box
    boxes.nth(1).click()
    page.get_by_role("button", name="Compare", exact=True).click()
    page.wait_for_function("() => document.querySelectorAll('#dw-compare-grids img').length == 1")
    _wait_idle(page)
    _grids_fit(page, "dw-compare-grids", 1)
    _shot(page, "8-compare-one")


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploads_in_the_browser_refuse_bad_archives_and_export(page, tmp_path):
    """A hostile zip is refused with a message and the loaded dataset stays; a zip with one broken
    image loads (the broken file is skipped and said so), is weighted, and exports its files."""
    _tab(page, "Dataset")
    page.get_by_text("Upload (.zip / .npy / .npz)").click()
    upload = page.locator("#dw-upload input[type=file]")
    hostile = _zip(tmp_path / "hostile.zip", {"ok.png": _png((255, 0, 0)), "../escape.png": _png((0, 255, 0))})
    upload.set_input_files(str(hostile))
    _wait_idle(page)
    page.get_by_role("button", name="Load dataset").click()
    toast = page.get_by_test_id("toast-body").filter(has_text="escape.png")
    toast.wait_for()
    assert "rejected" in toast.inner_text()
    assert "120 images" in page.locator("#dw-summary").inner_text()  # the loaded dataset is kept
    _shot(page, "8-hostile-zip")
    page.get_by_test_id("toast-body").locator("button").first.click()  # close the message

    members = {f"img_{i}.png": _png((40 * i, 20, 250 - 40 * i)) for i in range(6)}
    members["broken.png"] = b"\x89PNG\r\n\x1a\n not really a png"
    page.locator("#dw-upload button[aria-label='Clear']").click()
    upload.set_input_files(str(_zip(tmp_path / "colours.zip", members)))
    _wait_idle(page)
    page.get_by_role("button", name="Load dataset").click()
    page.locator("#dw-summary strong").get_by_text("6 images").wait_for()
    page.locator("#dw-notice").get_by_text("Skipped 1 file that could not be read: broken.png").wait_for()

    _tab(page, "Weights")
    page.locator("#dw-compute").click()
    page.locator("#dw-numbers").get_by_text("done").wait_for()
    _tab(page, "Export")
    page.get_by_role("button", name="Export weights").click()
    _wait_idle(page)
    page.locator("#dw-export-files").get_by_text(".csv").wait_for()
    files = page.locator("#dw-export-files").inner_text()
    assert ".npy" in files and ".json" in files, files
    assert "DiversityWeightedSampler(" in page.locator(".cm-content").first.inner_text()
    _shot(page, "9-export")
