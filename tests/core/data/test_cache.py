"""The array cache's one integrity rule, and the four caches built on it honouring it."""

import hashlib
import io
import json
import threading

import numpy as np
import pytest

from core.data import storage
from core.data.cache import ArrayCache
from core.data.dataset import make_dataset


def _arrays():
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(5, 3)).astype(np.float32), "labels": np.arange(5), "score": np.float64(0.25)}


def _damage(path, how):
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "flip":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif how == "delete":
        path.unlink()
    else:  # "garble": not JSON at all
        path.write_text("{not json")


def _assert_same(loaded, arrays):
    assert list(loaded) == list(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == np.asarray(array).dtype
        np.testing.assert_array_equal(loaded[name], array)


# ---------------------------------------------------------------------------- the helper


def test_round_trip_keeps_names_dtypes_shapes_and_meta(tmp_path):
    cache = ArrayCache(tmp_path / "cache")
    assert cache.load("k") is None and cache.meta("k") is None and not cache.exists("k")
    path = cache.save("k", _arrays(), {"config": {"gamma": 0.8}})
    assert path == tmp_path / "cache" / "k.npz" and cache.exists("k")
    _assert_same(cache.load("k"), _arrays())
    assert cache.meta("k") == {"config": {"gamma": 0.8}}
    sidecar = json.loads((tmp_path / "cache" / "k.json").read_text())
    assert sidecar["entry"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_npy_entry_holds_one_array(tmp_path):
    cache = ArrayCache(tmp_path, ".npy")
    features = np.ones((4, 2), np.float32)
    cache.save("f", {"features": features})
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy", allow_pickle=False), features)  # a plain .npy
    _assert_same(cache.load("f"), {"features": features})
    with pytest.raises(ValueError, match="exactly one"):
        cache.save("g", {"a": features, "b": features})


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_payload_is_a_miss_until_rewritten(tmp_path, suffix, damage):
    cache, arrays = ArrayCache(tmp_path, suffix), {"x": np.arange(200.0).reshape(40, 5)}
    cache.save("k", arrays)
    _damage(tmp_path / f"k{suffix}", damage)
    assert cache.load("k") is None
    assert cache.exists("k") is (damage == "flip")  # a cheap hint: a flipped byte keeps the length
    cache.save("k", arrays)  # what a caller does on a miss
    _assert_same(cache.load("k"), arrays)


@pytest.mark.parametrize("file, damage", [("k.npz", "delete"), ("k.json", "delete"), ("k.json", "garble"),
                                          ("k.json", "truncate")])
def test_a_missing_or_unreadable_file_is_a_miss(tmp_path, file, damage):
    cache = ArrayCache(tmp_path)
    cache.save("k", _arrays(), {"note": "x" * 100})
    _damage(tmp_path / file, damage)
    assert cache.load("k") is None and not cache.exists("k")


def test_a_payload_of_another_entry_is_a_miss(tmp_path):
    """A crash between the two writes leaves a new payload beside the old sidecar: caught by its checksum."""
    cache = ArrayCache(tmp_path)
    cache.save("k", {"x": np.zeros(3)})
    old_sidecar = (tmp_path / "k.json").read_bytes()
    cache.save("k", {"x": np.ones(3)})
    (tmp_path / "k.json").write_bytes(old_sidecar)
    assert cache.load("k") is None


def test_replacing_an_entry_leaves_no_temp_files(tmp_path):
    cache = ArrayCache(tmp_path)
    cache.save("k", {"x": np.zeros(3)}, {"n": 1})
    cache.save("k", {"x": np.ones(3)}, {"n": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json", "k.npz"]
    np.testing.assert_array_equal(cache.load("k")["x"], np.ones(3))
    assert cache.meta("k") == {"n": 2}


def test_a_failed_write_keeps_the_old_entry_and_no_temp_files(tmp_path, monkeypatch):
    cache = ArrayCache(tmp_path)
    cache.save("k", {"x": np.zeros(3)})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", disk_full)
    with pytest.raises(OSError):
        cache.save("k", {"x": np.ones(3)})
    monkeypatch.undo()
    np.testing.assert_array_equal(cache.load("k")["x"], np.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json", "k.npz"]


def test_nothing_is_ever_pickled(tmp_path):
    cache = ArrayCache(tmp_path, ".npy")
    with pytest.raises(ValueError):
        cache.save("k", {"x": np.array([{"a": 1}], dtype=object)})
    assert list(tmp_path.iterdir()) == []
    buffer = io.BytesIO()  # a pickled payload with a matching checksum is still refused
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "k.npy").write_bytes(buffer.getvalue())
    record = {"sha256": hashlib.sha256(buffer.getvalue()).hexdigest(), "bytes": len(buffer.getvalue()), "arrays": ["x"]}
    (tmp_path / "k.json").write_text(json.dumps({"entry": record}))
    assert cache.exists("k") and cache.load("k") is None


@pytest.mark.parametrize("key", ["../escape", "a/b", ".hidden", ""])
def test_keys_are_plain_file_names(tmp_path, key):
    with pytest.raises(ValueError, match="plain file name"):
        ArrayCache(tmp_path).load(key)


def test_the_integrity_record_is_reserved(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        ArrayCache(tmp_path).save("k", {"x": np.zeros(1)}, {"entry": "mine"})
    with pytest.raises(ValueError, match="suffix"):
        ArrayCache(tmp_path, ".pkl")


# ---------------------------------------------------------------------------- the four caches


def _counting(monkeypatch, module, name, replacement=None):
    """Replace module.name by a wrapper that records each call (of `replacement`, or the original)."""
    calls, target = [], replacement or getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return target(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def _embeddings(tmp_path, monkeypatch):
    from core.data import embed

    images = np.random.default_rng(0).integers(0, 256, (6, 5, 5, 1), dtype=np.uint8)
    dataset = make_dataset("toy", images, None, None, [f"t/{i}" for i in range(6)], "toy")
    calls = _counting(monkeypatch, embed, "embed")
    return lambda: embed.embed_cached(dataset, embed.EmbedConfig(model="pixels"), tmp_path)[0], calls, "*.npy"


def _weights(tmp_path, monkeypatch):
    from core.diversity import weights

    features = np.random.default_rng(1).random((12, 4))
    calls = _counting(monkeypatch, weights, "_optimise_batch")
    return lambda: weights.sweep_gamma(features, [0.8], tmp_path, steps=5)[0.8].p, calls, "*.npz"


def _layouts(tmp_path, monkeypatch):
    from core.data import projection

    monkeypatch.setattr(projection, "_WARM", threading.Event())  # the fake must not mark UMAP compiled
    calls = _counting(monkeypatch, projection, "_umap_fit_transform", lambda f, config, *_: projection.pca_2d(f))
    features = np.random.default_rng(2).normal(size=(20, 6)).astype(np.float32)
    return lambda: projection.project(features, projection.ProjectionConfig(), tmp_path)[0], calls, "*.npy"


def _probe(tmp_path, monkeypatch):
    from core.evaluation.metrics import inception

    rng = np.random.default_rng(3)
    features, labels = np.vstack([rng.normal(-2, 1, (30, 3)), rng.normal(2, 1, (30, 3))]), np.repeat([0, 1], 30)
    calls = _counting(monkeypatch, inception, "_train_probe")
    run = lambda: np.concatenate([part.ravel() for part in inception.fit_probe(features, labels, tmp_path)])
    return run, calls, "probe_*.npz"


@pytest.mark.parametrize("damage", ["truncate", "flip"])
@pytest.mark.parametrize("cache", [_embeddings, _weights, _layouts, _probe],
                         ids=["embeddings", "weights", "layouts", "probe"])
def test_each_cache_recomputes_a_damaged_entry_and_rewrites_it(tmp_path, monkeypatch, cache, damage):
    run, calls, pattern = cache(tmp_path, monkeypatch)
    first = run()
    np.testing.assert_array_equal(run(), first)
    assert len(calls) == 1  # the second call was a hit
    (payload,) = tmp_path.glob(pattern)
    _damage(payload, damage)
    np.testing.assert_array_equal(run(), first)
    assert len(calls) == 2  # the damaged entry was a miss: recomputed ...
    np.testing.assert_array_equal(run(), first)
    assert len(calls) == 2  # ... and rewritten whole


def test_a_cache_the_disk_refuses_does_not_fail_the_computation(tmp_path, monkeypatch):
    from core.data.dataset import make_dataset
    from core.data.embed import EmbedConfig, embed_cached

    images = np.random.default_rng(0).integers(0, 255, (6, 4, 4, 1), np.uint8)
    dataset = make_dataset("toy", images, None, None, [str(i) for i in range(6)], "toy")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", disk_full)
    with pytest.warns(RuntimeWarning, match="No space left on device"):
        features, hit = embed_cached(dataset, EmbedConfig.parse("pixels"), tmp_path / "cache")
    assert features.shape == (6, 16) and not hit
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing half-written is left
