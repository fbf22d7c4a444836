import csv
import json

import numpy as np
import pytest

from core.diversity import export


def _meta():
    return export.ExportMeta(dataset_name="toy", dataset_fingerprint="abc123", embedder="pixels",
                             config={"gamma": 0.8}, vs_uniform=2.0, vs_weighted=3.0)


def test_export_roundtrip(tmp_path):
    p = np.array([0.1, 0.2, 0.3, 0.4])
    paths = export.export_weights(p, ["a", "b", "c", "d"], np.array([0, 1, 0, 1]), _meta(), tmp_path)
    np.testing.assert_array_equal(export.load_exported_weights(paths["npy"]), p)
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert float(rows[3]["weight"]) == pytest.approx(1.6)  # n * p
    assert float(rows[3]["p"]) == pytest.approx(0.4)
    assert rows[1]["label"] == "1" and rows[1]["label_id"] == "1"  # no class names: the number
    side = json.loads(paths["json"].read_text())
    assert side["dataset_fingerprint"] == "abc123" and side["config"] == {"gamma": 0.8}
    assert side["vs_weighted"] == 3.0 and side["n"] == 4


def test_csv_labels_are_class_names_with_their_ids(tmp_path):
    paths = export.export_weights(np.full(3, 1 / 3), ["a", "b", "c"], np.array([2, 0, 3]), _meta(), tmp_path,
                                  class_names=["cat", "dog", "bird"])
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [(r["label"], r["label_id"]) for r in rows] == [("bird", "2"), ("cat", "0"), ("3", "3")]  # 3: no name
    unlabelled = export.weights_csv_text(np.full(2, 0.5), ["a", "b"], None, class_names=["cat"])
    assert [(r["label"], r["label_id"]) for r in csv.DictReader(unlabelled.splitlines())] == [("", ""), ("", "")]


def test_bad_weights_write_nothing_and_keep_old_files(tmp_path):
    good = np.full(3, 1 / 3)
    export.export_weights(good, ["a", "b", "c"], None, _meta(), tmp_path)
    before = (tmp_path / "weights.npy").read_bytes()
    with pytest.raises(ValueError):
        export.export_weights(np.array([0.5, 0.5, 0.5]), ["a", "b", "c"], None, _meta(), tmp_path)
    with pytest.raises(ValueError):
        export.export_weights(good, ["a", "b"], None, _meta(), tmp_path)  # ids do not match
    assert (tmp_path / "weights.npy").read_bytes() == before
    with pytest.raises(ValueError):
        export.export_weights(good, ["a", "b", "c"], None, _meta(), tmp_path, stem="../evil")


def test_sampler_snippet_runs(tmp_path):
    torch = pytest.importorskip("torch")
    p = np.array([0.0, 0.0, 1.0])
    np.save(tmp_path / "w.npy", p)
    namespace = {"dataset": torch.utils.data.TensorDataset(torch.arange(3))}
    code = export.sampler_snippet(str(tmp_path / "w.npy"), batch_size=2)
    exec(compile(code, "snippet", "exec"), namespace)
    batch = next(iter(namespace["loader"]))[0]
    assert batch.tolist() == [2, 2]  # all mass on example 2


def test_thumbnails(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, size=(5, 8, 8, 1), dtype=np.uint8)
    paths = export.write_thumbnails(images, [4, 1], tmp_path, size=32)
    assert [p.name for p in paths] == ["00004.png", "00001.png"]
    from PIL import Image
    assert Image.open(paths[0]).size == (32, 32)
