"""Embeddings: the real open_clip code path on a tiny randomly-initialised config, pixels, cache."""

import json
import time

import numpy as np
import pytest

from core.data import embed as embed_module
from core.data.dataset import make_dataset
from core.data.embed import EmbedCancelled, EmbedConfig, WeightsUnavailable, embed, embed_cached, parse_embedder

TINY = "divweights-tiny-test"
TINY_CFG = {"embed_dim": 16,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
            "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """Register a tiny open_clip architecture (random weights, no download)."""
    import open_clip

    path = tmp_path_factory.mktemp("configs") / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CFG))
    open_clip.add_model_config(path)
    return TINY


def toy_dataset(n=12, size=12, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    return make_dataset("toy", images, np.arange(n) % 2, ["a", "b"], [f"t/{i}" for i in range(n)], "toy")


def unit_rows(features):
    return np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


# ---------------------------------------------------------------------------- open_clip path


def test_clip_features_shape_dtype_and_unit_rows(tiny_model):
    features = embed(toy_dataset(), model=tiny_model, pretrained="none", device="cpu")
    assert features.shape == (12, 16) and features.dtype == np.float32 and unit_rows(features)
    assert np.linalg.matrix_rank(features) > 1  # different images, different features


def test_grey_images_equal_their_rgb_copy(tiny_model):
    grey = toy_dataset()
    rgb = make_dataset("rgb", np.repeat(grey.images, 3, axis=-1), None, None, grey.ids, "rgb")
    np.testing.assert_allclose(embed(grey, tiny_model, "none", "cpu"), embed(rgb, tiny_model, "none", "cpu"),
                               atol=1e-6)


def test_random_weights_are_reproducible(tiny_model):
    first = embed(toy_dataset(n=4), tiny_model, "none", "cpu")
    embed_module.load_clip.cache_clear()
    np.testing.assert_array_equal(first, embed(toy_dataset(n=4), tiny_model, "none", "cpu"))


def test_batch_size_does_not_change_features(tiny_model):
    ds = toy_dataset(n=10)
    small = embed(ds, tiny_model, "none", "cpu", batch_size=3)
    large = embed(ds, tiny_model, "none", "cpu", batch_size=64)
    np.testing.assert_allclose(small, large, atol=1e-5)


def test_progress_and_stop(tiny_model):
    seen = []
    embed(toy_dataset(n=10), tiny_model, "none", "cpu", batch_size=4, on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 10), (8, 10), (10, 10)]
    with pytest.raises(EmbedCancelled):
        embed(toy_dataset(n=10), tiny_model, "none", "cpu", batch_size=4, should_stop=lambda: True)


def test_model_normalisation_is_the_models_own(tiny_model):
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    _, mean, std, size = embed_module.load_clip(tiny_model, None, "cpu")
    assert size == 32
    np.testing.assert_allclose(mean.flatten().numpy(), OPENAI_DATASET_MEAN, rtol=1e-6)
    np.testing.assert_allclose(std.flatten().numpy(), OPENAI_DATASET_STD, rtol=1e-6)


def test_resize_is_antialiased_bicubic():
    checker = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)[..., None]
    small = embed_module.resize_square(checker, 8)
    assert small.shape == (8, 8, 1) and np.abs(small.astype(int) - 128).max() <= 2  # aliasing gives 0/255
    tall = np.zeros((20, 10, 3), np.uint8)
    tall[:5] = 255  # the top quarter is cropped away by the centre crop
    assert (embed_module.resize_square(tall, 10) == 0).all()


def _save_tiny_weights(path):
    import open_clip
    from safetensors.torch import save_file

    model = open_clip.create_model(TINY, pretrained=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model


def test_pretrained_checkpoint_file_is_loaded(tiny_model, tmp_path):
    import torch

    reference = _save_tiny_weights(tmp_path / "tiny.safetensors")
    ds = toy_dataset(n=4)
    features = embed(ds, tiny_model, str(tmp_path / "tiny.safetensors"), "cpu")
    x = embed_module._to_tensor(embed_module.resize_batch(ds.images, 32), *embed_module.load_clip(
        tiny_model, str(tmp_path / "tiny.safetensors"), "cpu")[1:3], "cpu")
    with torch.no_grad():
        expected = reference.eval().encode_image(x).numpy()
    np.testing.assert_allclose(features, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)


def test_cached_hub_weights_are_found_without_network(tiny_model, tmp_path, monkeypatch):
    """A tag whose weights sit in the Hugging Face cache loads offline (the real lookup)."""
    import huggingface_hub.constants
    import open_clip.pretrained

    hub = tmp_path / "hub"
    snapshot = hub / "models--divweights--tiny" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (hub / "models--divweights--tiny" / "refs").mkdir()
    (hub / "models--divweights--tiny" / "refs" / "main").write_text("abc123")
    _save_tiny_weights(snapshot / "open_clip_model.safetensors")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, TINY, {"fake": {
        "hf_hub": "divweights/tiny/", "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path, cfg = embed_module.resolve_weights(TINY, "fake")
    assert path == str(snapshot / "open_clip_model.safetensors")
    _, mean, std, _ = embed_module.load_clip(TINY, "fake", "cpu")
    assert mean.flatten().tolist() == [0.5] * 3 and std.flatten().tolist() == [0.25] * 3  # the tag's own


def test_missing_weights_offline_fail_fast_naming_where_they_were_looked_for(tmp_path, monkeypatch):
    import huggingface_hub.constants
    import open_clip  # noqa: F401  (its import time is not what is measured)

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailable) as info:
        embed(toy_dataset(n=2), model="ViT-B-32", pretrained="openai", device="cpu")
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert "ViT-B-32/openai" in message and "timm/vit_base_patch32_clip_224.openai" in message
    assert str(tmp_path / "empty-hub") in message and "pixels" in message


@pytest.mark.parametrize("model, pretrained, message", [
    ("no-such-model", "none", "unknown open_clip model"), ("ViT-B-32", "no-such-tag", "no pretrained tag")])
def test_unknown_model_or_tag(model, pretrained, message):
    with pytest.raises(ValueError, match=message):
        embed(toy_dataset(n=2), model=model, pretrained=pretrained, device="cpu")


@pytest.mark.gpu
def test_cuda_autocast_matches_cpu(tiny_model):
    ds = toy_dataset(n=16)
    cpu = embed(ds, tiny_model, "none", "cpu")  # random weights are seeded: the same network
    gpu = embed(ds, tiny_model, "none", "cuda")
    assert gpu.dtype == np.float32 and (np.sum(cpu * gpu, axis=1) > 0.99).all()


# ---------------------------------------------------------------------------- pixels, precomputed


def test_pixels_flatten_normalise_and_resize():
    ds = toy_dataset(n=5, size=6, channels=3)
    features = embed(ds, model="pixels")
    assert features.shape == (5, 108) and unit_rows(features)
    expected = ds.images[0].reshape(-1) / np.linalg.norm(ds.images[0].reshape(-1).astype(float))
    np.testing.assert_allclose(features[0], expected, rtol=1e-5)
    assert embed(ds, model="pixels", image_size=4).shape == (5, 48)


def test_blank_image_gets_a_defined_direction():
    ds = make_dataset("blank", np.zeros((2, 3, 3, 1), np.uint8), None, None, ["a", "b"], "blank")
    features = embed(ds, model="pixels")
    assert unit_rows(features) and np.isfinite(features).all()


def test_precomputed_features_are_normalised_and_required():
    ds = toy_dataset(n=3)
    with pytest.raises(ValueError, match="no precomputed features"):
        embed(ds, model="precomputed")
    ds.features = np.array([[3.0, 4.0], [0, 2], [1, 0]], np.float32)
    np.testing.assert_allclose(embed(ds, model="precomputed")[0], [0.6, 0.8])


# ---------------------------------------------------------------------------- cache


def test_cache_miss_then_hit_with_sidecar(tmp_path):
    ds, config = toy_dataset(), EmbedConfig(model="pixels")
    first, hit1 = embed_cached(ds, config, cache_dir=tmp_path)
    second, hit2 = embed_cached(ds, config, cache_dir=tmp_path)
    assert (hit1, hit2) == (False, True)
    np.testing.assert_array_equal(first, second)
    meta = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert meta["config"]["model"] == "pixels" and meta["shape"] == [12, 144]
    assert not list(tmp_path.glob("*.tmp"))


def test_cache_key_depends_on_data_model_and_preprocessing():
    ds, other = toy_dataset(seed=0), toy_dataset(seed=1)
    keys = {embed_module.cache_key(ds.fingerprint, EmbedConfig(model="pixels")),
            embed_module.cache_key(other.fingerprint, EmbedConfig(model="pixels")),
            embed_module.cache_key(ds.fingerprint, EmbedConfig(model="pixels", image_size=4)),
            embed_module.cache_key(ds.fingerprint, EmbedConfig()),
            embed_module.cache_key(ds.fingerprint, EmbedConfig(pretrained="laion2b_s32b_b82k"))}
    assert len(keys) == 5
    same = embed_module.cache_key(ds.fingerprint, EmbedConfig(model="pixels", batch_size=7, device="cpu"))
    assert same == embed_module.cache_key(ds.fingerprint, EmbedConfig(model="pixels"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop-sidecar", "bad-sidecar"])
def test_corrupted_cache_is_detected_and_rebuilt(tmp_path, damage):
    ds, config = toy_dataset(), EmbedConfig(model="pixels")
    good, _ = embed_cached(ds, config, cache_dir=tmp_path)
    npy, meta = next(tmp_path.glob("*.npy")), next(tmp_path.glob("*.json"))
    data = npy.read_bytes()
    if damage == "truncate":
        npy.write_bytes(data[:-100])
    elif damage == "flip":
        npy.write_bytes(data[:-4] + bytes(b ^ 0xFF for b in data[-4:]))
    elif damage == "drop-sidecar":
        meta.unlink()
    else:
        meta.write_text("{not json")
    rebuilt, hit = embed_cached(ds, config, cache_dir=tmp_path)
    assert hit is False
    np.testing.assert_array_equal(rebuilt, good)
    assert embed_cached(ds, config, cache_dir=tmp_path)[1] is True


def test_cache_defaults_under_the_data_root(data_root):
    embed_cached(toy_dataset(), EmbedConfig(model="pixels"))
    assert len(list((data_root / "cache" / "embeddings").glob("*.npy"))) == 1


def test_clip_through_the_cache(tiny_model, tmp_path):
    ds, config = toy_dataset(n=6), EmbedConfig(model=tiny_model, pretrained="none", device="cpu")
    first, hit = embed_cached(ds, config, cache_dir=tmp_path)
    again, hit_again = embed_cached(ds, config, cache_dir=tmp_path)
    assert (hit, hit_again) == (False, True) and first.shape == (6, 16)
    np.testing.assert_array_equal(first, again)


# ---------------------------------------------------------------------------- naming an embedder


@pytest.mark.parametrize("text, pretrained", [("ViT-L-14/openai", None), ("ViT-L-14 openai", None),
                                              (" ViT-L-14 / openai ", None), ("ViT-L-14", "openai"),
                                              ("ViT-L-14", None), ("ViT-L-14/openai", "openai")])
def test_the_studio_and_cli_spellings_name_one_embedder(text, pretrained):
    assert parse_embedder(text, pretrained) == ("ViT-L-14", "openai")
    assert EmbedConfig.parse(text, pretrained).describe() == "ViT-L-14/openai"  # parse inverts describe


def test_embedder_names_keep_checkpoint_paths_and_refuse_contradictions():
    assert parse_embedder("ViT-B-32//home/me/ckpt.pt") == ("ViT-B-32", "/home/me/ckpt.pt")
    assert parse_embedder("ViT-B-32 /home/me/my models/ckpt.pt") == ("ViT-B-32", "/home/me/my models/ckpt.pt")
    assert parse_embedder("ViT-B-32", "none") == ("ViT-B-32", "none")
    assert parse_embedder("pixels", "openai") == ("pixels", "")
    with pytest.raises(ValueError, match="names the weights 'openai' but pretrained says 'none'"):
        parse_embedder("ViT-L-14/openai", "none")
    for bad in ("", "  ", "/openai"):
        with pytest.raises(ValueError, match="choose an embedder"):
            parse_embedder(bad)
