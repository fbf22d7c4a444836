"""A user's own images end to end in headless Chromium: a zip made by "compress folder" (one top folder,
class subfolders) and a folder under the data root are each loaded with their classes, weighted, and
trained on (a baseline and a DivW run) until the runs table shows progress and the sample grids appear."""

import io
import zipfile

import pytest
from PIL import Image, ImageDraw

from tests.ui.launch import ARTIFACTS, BROWSER_TEST, chromium, launched_studio, open_page

TIMEOUT_MS = 60_000
SHAPES = ("circles", "squares", "stars")

pytestmark = BROWSER_TEST


def shape_png(kind: str, index: int) -> bytes:
    """A 32-px white shape on black, its size and place varying with `index`."""
    image = Image.new("L", (32, 32), 0)
    draw = ImageDraw.Draw(image)
    r, cx, cy = 5 + index % 4 * 2, 10 + index % 3 * 6, 10 + index % 5 * 3
    if kind == "circles":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    elif kind == "squares":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=255)
    else:
        draw.polygon([(cx, cy - r), (cx + r // 3, cy - r // 3), (cx + r, cy), (cx + r // 3, cy + r // 3),
                      (cx, cy + r), (cx - r // 3, cy + r // 3), (cx - r, cy), (cx - r // 3, cy - r // 3)], fill=255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def shape_files(per_class: int = 8) -> dict[str, bytes]:
    return {f"shapes/{kind}/{i:02d}.png": shape_png(kind, i) for kind in SHAPES for i in range(per_class)}


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    with launched_studio(root, per_class=20, steps=5, extra_tabs=True) as demo, chromium() as browser:
        yield root, open_page(browser, demo.local_url, TIMEOUT_MS)


def _wait_idle(page) -> None:
    page.wait_for_function("() => !document.body.innerText.includes('processing |')")


def _number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def _weigh_and_train(page, runs_before: int, shot: str) -> None:
    """Weights tab -> Compute; Train tab -> a baseline + the new DivW weights, 12 steps; until both finish."""
    page.get_by_role("tab", name="Weights").click()
    page.locator("#dw-compute").click()
    page.locator("#dw-numbers").get_by_text("done").wait_for(timeout=120_000)
    page.get_by_role("tab", name="Train").click()
    page.locator("#dw-train-weights label").filter(has_text="γ=").first.wait_for()
    for label in page.locator("#dw-train-weights label").all():  # only this dataset's weights are offered
        if not label.locator("input").is_checked():
            label.click()
    _number(page, "dw-train-steps", 12)
    _number(page, "dw-train-batch", 8)
    page.locator("#dw-train-start").click()
    page.locator("#dw-train-message").get_by_text("Started 2 run(s)").wait_for()
    total = runs_before + 2
    page.wait_for_function(f"() => (document.querySelector('#dw-runs').innerText"
                           f".match(/finished 12 steps/g) || []).length == {total}", timeout=240_000)
    table = page.locator("#dw-runs").inner_text()
    assert "failed" not in table and "could not start" not in table, table
    page.wait_for_function("() => { const gd = document.querySelector('#dw-losses .js-plotly-plot');"
                           " return gd && gd.data && gd.data.length >= 4 && gd.data.every(t => t.x.length > 0); }")
    page.locator("#dw-train-grids img").nth(1).wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"e2e-own-{shot}.png"), full_page=True)


def test_a_compressed_folder_upload_is_loaded_by_class_weighted_and_trained(studio, tmp_path):
    root, page = studio
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, data in shape_files().items():
            zipped.writestr(name, data)
    page.get_by_role("tab", name="Dataset").click()
    page.get_by_text("Upload (.zip / .npy / .npz)").click()
    page.locator("#dw-upload input[type=file]").set_input_files(str(archive))
    _wait_idle(page)
    page.locator("#dw-subfolders input").check()
    page.get_by_role("button", name="Load dataset").click()
    page.locator("#dw-summary strong").get_by_text("24 images").wait_for()
    summary = page.locator("#dw-summary").inner_text()
    assert all(kind in summary for kind in SHAPES), summary
    _weigh_and_train(page, 0, "upload")


def test_a_folder_under_the_data_root_is_loaded_by_class_weighted_and_trained(studio):
    root, page = studio
    for name, data in shape_files(6).items():
        path = root / "mine" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    page.get_by_role("tab", name="Dataset").click()
    page.get_by_text("Folder under the data root").click()
    page.locator("#dw-folder textarea, #dw-folder input").first.fill("mine")
    page.locator("#dw-subfolders input").check()
    page.get_by_role("button", name="Load dataset").click()
    page.locator("#dw-summary strong").get_by_text("18 images").wait_for()
    summary = page.locator("#dw-summary").inner_text()
    assert all(kind in summary for kind in SHAPES), summary
    _weigh_and_train(page, 2, "folder")
