"""Exports into trainers' formats, each read back the way that tool reads it: `datasets`' imagefolder
loader, a TOML reader for kohya's dataset_config.toml, and the files of a resampled folder."""

import csv
import os
import tomllib

import numpy as np
import pytest
from PIL import Image

from core.diversity.export_formats import largest_remainder, write_imagefolder, write_kohya, write_resampled


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(30, 8, 8, 1), dtype=np.uint8)
    p = rng.dirichlet(np.ones(30) * 0.5)
    ids = [f"img/{i}.png" for i in range(30)]
    return images, ids, p


def test_largest_remainder_sums_to_the_total_and_is_within_one_draw_of_p():
    rng = np.random.default_rng(1)
    for n, total in ((7, 7), (100, 37), (50, 1000)):
        p = rng.dirichlet(np.ones(n))
        repeats = largest_remainder(p, total)
        assert repeats.counts.sum() == total and (repeats.counts >= 0).all()
        assert repeats.max_abs_error <= 1 / total + 1e-12
        assert np.all(np.abs(repeats.counts - p * total) < 1)  # each count is a floor or a ceiling
    exact = largest_remainder(np.array([0.5, 0.25, 0.25]), 8)
    assert exact.counts.tolist() == [4, 2, 2] and exact.max_abs_error == 0 and exact.total_variation == 0
    with pytest.raises(ValueError, match="at least 1"):
        largest_remainder(np.array([1.0]), 0)


def test_imagefolder_loads_with_hugging_face_datasets(data, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    images, ids, p = data
    labels = ["odd" if i % 2 else "even" for i in range(30)]
    folder = write_imagefolder(images, ids, p, tmp_path / "hf", labels=labels, extra_columns={"why": ["x"] * 30})
    loaded = datasets.load_dataset("imagefolder", data_dir=str(folder), split="train")
    assert len(loaded) == 30
    by_id = {row["id"]: row for row in loaded}
    for i in range(30):
        row = by_id[ids[i]]
        assert row["p"] == pytest.approx(p[i], rel=1e-9) and row["weight"] == pytest.approx(30 * p[i], rel=1e-7)
        assert row["label"] == labels[i] and row["why"] == "x"
        np.testing.assert_array_equal(np.asarray(row["image"]), images[i, :, :, 0])


def test_kohya_config_parses_and_its_repeats_match_p(data, tmp_path):
    images, ids, p = data
    folder, repeats = write_kohya(images, ids, p, tmp_path / "kohya", total=300, name="my set")
    config = tomllib.loads((folder / "dataset_config.toml").read_text())
    subsets = config["datasets"][0]["subsets"]
    seen, draws = {}, 0
    for subset in subsets:
        image_dir = subset["image_dir"]
        assert os.path.isabs(image_dir) and os.path.isdir(image_dir)
        for name in os.listdir(image_dir):
            seen[int(name.split(".")[0])] = subset["num_repeats"]
            draws += subset["num_repeats"]
    assert draws == repeats.total == 300
    shares = np.array([seen.get(i, 0) for i in range(30)]) / draws
    assert np.abs(shares - p).max() == pytest.approx(repeats.max_abs_error) and repeats.max_abs_error <= 1 / 300
    assert repeats.dropped == sum(1 for i in range(30) if i not in seen)
    assert all(os.path.basename(s["image_dir"]).startswith(f"{s['num_repeats']}_my-set") for s in subsets)


def test_resampled_folder_links_draws_to_sources_with_a_manifest(data, tmp_path):
    images, ids, p = data
    folder, drawn = write_resampled(images, ids, p, tmp_path / "resampled", draws=500, seed=3)
    with open(folder / "manifest.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 500 == len(os.listdir(folder / "images"))
    for row in rows[:50]:
        index = int(row["source_index"])
        assert row["source_id"] == ids[index]
        np.testing.assert_array_equal(np.asarray(Image.open(folder / row["file_name"])), images[index, :, :, 0])
    assert os.stat(folder / rows[0]["file_name"]).st_nlink >= 2  # a hard link, not a copy
    counts = np.bincount(drawn, minlength=30) / 500
    assert np.abs(counts - p).sum() / 2 < 0.15  # 500 draws follow p (total variation)


def test_an_export_replaces_only_its_own_folder(data, tmp_path):
    images, ids, p = data
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not a divweights export"):
        write_imagefolder(images, ids, p, mine)
    assert (mine / "precious.txt").read_text() == "keep me"
    first = write_imagefolder(images, ids, p, tmp_path / "hf")
    write_imagefolder(images[:10], ids[:10], p[:10] / p[:10].sum(), first)  # our own export: replaced whole
    assert len(list(first.glob("*.png"))) == 10
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".")]  # no staging left behind
