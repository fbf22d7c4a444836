"""The Export tab's trainer formats through its handler: a real folder and its zip under generated/."""

import tomllib
import zipfile
from pathlib import Path

import gradio as gr
import pytest

from core.limits import RequestLimits
from core.workbench import Workbench
from divweights_ui import handlers as h
from divweights_ui.export_tab import export_for_trainer
from divweights_ui.session import Session


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return root, h.initial_session(Workbench(root), h.StartupChoice("digits", (0, 1), 20, steps=8))


def test_each_format_writes_a_folder_and_its_zip_under_generated(session):
    root, state = session
    wb = Workbench(root)
    text, archive, code = export_for_trainer(state, "kohya", 200, wb=wb)
    assert "200 draws per pass" in text and "dataset_config.toml" in code
    folder = root / text.split("`")[1]
    assert folder.is_relative_to(root / "generated") and folder.name == "kohya"
    config = tomllib.loads((folder / "dataset_config.toml").read_text())
    assert sum(s["num_repeats"] * len(list(Path(s["image_dir"]).iterdir()))
               for s in config["datasets"][0]["subsets"]) == 200
    with zipfile.ZipFile(archive) as zipped:
        assert "kohya/dataset_config.toml" in zipped.namelist()
    text, archive, code = export_for_trainer(state, "imagefolder", None, wb=wb)
    assert "40 images with a metadata.csv (weight, p, why-columns)" in text and "load_dataset" in code
    text, _, _ = export_for_trainer(state, "resampled", 100, wb=wb)
    assert text.count("100 draws") == 1


def test_bad_requests_get_a_sentence_and_write_nothing(session):
    root, state = session
    wb = Workbench(root, limits=RequestLimits(max_export_draws=1000))
    with pytest.raises(gr.Error, match="The number of draws must be between 1 and 1,000"):
        export_for_trainer(state, "resampled", 5000, wb=wb)
    with pytest.raises(gr.Error, match="Choose a format"):
        export_for_trainer(state, "../../etc", None, wb=wb)
    with pytest.raises(gr.Error, match="Compute weights first|Load"):
        export_for_trainer(Session(), "kohya", None, wb=wb)
