import gzip

import numpy as np
import pytest

from core.data import datasets
from core.data.datasets import class_pair, list_builtins, load_dataset


def test_digits_is_uint8_nhwc_with_ten_named_classes(data_root):
    ds = load_dataset("digits")
    assert ds.images.shape == (1797, 8, 8, 1) and ds.images.dtype == np.uint8
    assert ds.images.max() == 255 and ds.images.min() == 0  # 0..16 scaled to 0..255
    assert ds.labels.dtype == np.int64 and set(ds.labels.tolist()) == set(range(10))
    assert ds.class_names == [str(i) for i in range(10)]
    assert len(ds.ids) == len(set(ds.ids)) == 1797


def test_builtin_arrays_are_read_only_and_records_independent(data_root):
    first, second = load_dataset("digits"), load_dataset("digits")
    with pytest.raises(ValueError):
        first.images[0, 0, 0, 0] = 1
    first.ids.append("extra")
    assert len(second.ids) == 1797 and first.fingerprint == second.fingerprint


def test_class_pair_is_balanced_deterministic_and_seed_dependent(data_root):
    ds = load_dataset("digits")
    a = class_pair(ds, (3, 8), per_class=50, seed=0)
    b = class_pair(ds, (3, 8), per_class=50, seed=0)
    c = class_pair(ds, (3, 8), per_class=50, seed=1)
    assert np.bincount(a.labels, minlength=10)[[3, 8]].tolist() == [50, 50]
    assert a.labels[:50].tolist() == [3] * 50  # class order as given
    assert a.ids == b.ids and a.fingerprint == b.fingerprint
    assert a.ids != c.ids and a.fingerprint != c.fingerprint


def test_class_pair_matches_the_documented_rng_recipe(data_root):
    # identical on every machine: one default_rng(seed), one choice per class, in the order given
    ds = load_dataset("digits")
    rng = np.random.default_rng(7)
    expected = [np.sort(rng.choice(np.flatnonzero(ds.labels == c), 20, replace=False)) for c in (9, 4)]
    got = class_pair(ds, (9, 4), per_class=20, seed=7)
    assert got.ids == [ds.ids[i] for i in np.concatenate(expected)]
    np.testing.assert_array_equal(got.images, ds.images[np.concatenate(expected)])


@pytest.mark.parametrize("classes, per_class, message", [
    ((0, 0), 5, "distinct"), ((0, 11), 5, "do not exist"), ((0, 1), 10_000, "cannot draw")])
def test_class_pair_rejects_bad_requests(data_root, classes, per_class, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("digits", classes=classes, per_class=per_class)


def _write_idx(folder, images, labels, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    header_i = bytes([0, 0, 8, 3]) + b"".join(int(s).to_bytes(4, "big") for s in images.shape)
    header_l = bytes([0, 0, 8, 1]) + len(labels).to_bytes(4, "big")
    opener = gzip.open if gz else open
    suffix = ".gz" if gz else ""
    with opener(folder / f"train-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(header_i + images.tobytes())
    with opener(folder / f"train-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(header_l + labels.tobytes())


def test_mnist_is_read_from_idx_files_in_the_data_root(data_root):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10, dtype=np.uint8), 3)
    _write_idx(data_root / "mnist", images, labels, gz=False)
    ds = load_dataset("mnist")
    np.testing.assert_array_equal(ds.images[..., 0], images)
    assert ds.labels.tolist() == labels.tolist() and ds.class_names[3] == "3"
    assert next(r for r in list_builtins() if r["name"] == "mnist")["available"]


def test_truncated_idx_file_is_rejected(data_root):
    images = np.zeros((4, 28, 28), np.uint8)
    _write_idx(data_root / "mnist", images, np.zeros(4, np.uint8))
    path = data_root / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-10]))
    with pytest.raises(ValueError, match="header declares"):
        load_dataset("mnist")


def test_missing_mnist_says_where_it_looked(data_root, monkeypatch):
    monkeypatch.setenv("DIVWEIGHTS_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("mnist")
    assert str(data_root / "mnist") in str(info.value) and "digits" in str(info.value)
    row = next(r for r in list_builtins() if r["name"] == "mnist")
    assert row["available"] is False


def test_download_lands_in_torchvision_layout_and_is_found(data_root, monkeypatch):
    calls = []

    def fake_download(name, root):  # stands in for torchvision's download (no network in tests)
        calls.append(name)
        _write_idx(root / "MNIST" / "raw", np.zeros((10, 28, 28), np.uint8), np.arange(10, dtype=np.uint8))

    monkeypatch.setattr(datasets, "_online", lambda: True)
    monkeypatch.setattr(datasets, "_download_idx", fake_download)
    assert load_dataset("mnist").images.shape == (10, 28, 28, 1) and calls == ["mnist"]
    load_dataset("mnist")
    assert calls == ["mnist"]  # found locally the second time


def test_fashion_mnist_uses_standard_class_names(data_root, monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_DIR", data_root / "nowhere")
    _write_idx(data_root / "fashion-mnist", np.zeros((10, 28, 28), np.uint8), np.arange(10, dtype=np.uint8))
    ds = load_dataset("fashion-mnist")
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_unknown_source_outside_root_is_refused(data_root):
    with pytest.raises(ValueError, match="outside the data root"):
        load_dataset("../../etc")
