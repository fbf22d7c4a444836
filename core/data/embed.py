"""Embeddings: open_clip image features (the paper: CLIP ViT-L/14 'openai'), a pixel embedder,
the user's precomputed features, and a disk cache.

Every embedder returns (N, d) float32 with rows L2-normalised, ready for the Vendi Score's
cosine-similarity kernel. Preprocessing is done here, not with tensor interpolation:
PIL bicubic resizing (anti-aliased, as clean-fid recommends) of the shortest side to the
model's input size, a centre crop, grey -> RGB, then the model's own mean/std.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from . import storage
from .cache import ArrayCache
from .network import host_reachable
from ..devices import resolve_device

CACHE_VERSION = 1  # bump when preprocessing or the cache layout changes
PREPROCESSING = "pil-bicubic-antialias/shortest-side/center-crop/grey-to-rgb/model-mean-std"
PIXELS, PRECOMPUTED = "pixels", "precomputed"
NO_WEIGHTS = ("", "none", "random")  # pretrained values meaning "randomly initialised"


class WeightsUnavailable(RuntimeError):
    """CLIP weights are neither in a local cache nor downloadable from here."""


class EmbedCancelled(RuntimeError):
    """`should_stop()` returned True: nothing was returned or cached."""


@dataclass
class EmbedConfig:
    model: str = "ViT-L-14"  # open_clip architecture, "pixels", or "precomputed"
    pretrained: str = "openai"  # open_clip tag, a checkpoint file, or "none" (random weights)
    image_size: int | None = None  # pixels: resize to this square size first (None: as is)
    batch_size: int | None = None  # None: 64 on CPU, sized to free memory on CUDA
    device: str | None = None  # None: "cuda" when available, else "cpu"

    def describe(self) -> str:
        if self.model in (PIXELS, PRECOMPUTED):
            return self.model if not self.image_size else f"{self.model}@{self.image_size}"
        return f"{self.model}/{self.pretrained or 'none'}"

    @classmethod
    def parse(cls, text: str | None, pretrained: str | None = None, **settings) -> "EmbedConfig":
        """The one reading of an embedder string (`parse_embedder`), the inverse of `describe`.
        pretrained: the CLI's separate --pretrained, if given. settings: image_size, batch_size, device."""
        model, tag = parse_embedder(text, pretrained)
        return cls(model=model, pretrained=tag, **settings)


def parse_embedder(text: str | None, pretrained: str | None = None) -> tuple[str, str]:
    """'pixels', 'precomputed', 'MODEL' (the 'openai' weights), 'MODEL/PRETRAINED' or 'MODEL PRETRAINED'
    (PRETRAINED: an open_clip tag, a checkpoint file or 'none') -> (model, pretrained). The studio's
    "ViT-L-14/openai" and the CLI's `--model ViT-L-14 --pretrained openai` are the same embedder;
    `pretrained` (the CLI's --pretrained) may repeat the tag written in `text`, not contradict it."""
    text = (text or "").strip()
    if text in (PIXELS, PRECOMPUTED):
        return text, ""
    # MODEL/PRETRAINED, MODEL PRETRAINED or MODEL / PRETRAINED; "MODEL /abs/ckpt.pt" keeps its absolute path
    match = re.fullmatch(r"([^/\s]+)(?:/(.*)|\s+(?:/\s+)?(.*))?", text, flags=re.DOTALL)
    if match is None:
        raise ValueError("choose an embedder: pixels, precomputed or an open_clip model such as ViT-L-14/openai "
                         f"(got {text!r})")
    model, written = match.group(1), (match.group(2) or match.group(3) or "").strip()
    given = (pretrained or "").strip()
    if written and given and written != given:
        raise ValueError(f"the model {text!r} names the weights {written!r} but pretrained says {given!r}: give one")
    return model, written or given or EmbedConfig.pretrained


def check_web_embedder(config: EmbedConfig, models_dir: Path) -> EmbedConfig:
    """An embedder named on the web page: pixels, precomputed, or one of open_clip's listed (model,
    tag) pairs ('none' for random weights); a checkpoint file only from `models_dir` (the data root's
    models/ folder). The refusal is the same sentence whether or not a named file exists, so the page
    learns nothing about the server's files. (The command line names any checkpoint it likes.)"""
    if config.model in (PIXELS, PRECOMPUTED):
        return config
    import open_clip

    if config.model not in open_clip.list_models():
        raise ValueError(f"unknown open_clip model {config.model!r} (see open_clip.list_models(), or use 'pixels')")
    tag = config.pretrained or "none"
    if tag.lower() in NO_WEIGHTS or tag in open_clip.list_pretrained_tags_by_model(config.model):
        return config
    checkpoint = (Path(models_dir) / tag).resolve()
    if Path(models_dir).resolve() in checkpoint.parents and checkpoint.is_file():
        return dataclasses.replace(config, pretrained=str(checkpoint))
    raise ValueError(f"{config.model} has no pretrained tag {tag!r}; in the studio, a checkpoint file must be "
                     f"named by its file name inside {models_dir}")


# ---------------------------------------------------------------------------- preprocessing


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 -> (size, size, C) uint8: PIL bicubic (anti-aliased) shortest side, centre crop."""
    from PIL import Image

    height, width, channels = image.shape
    if height == size and width == size:
        return image
    pil = Image.fromarray(image[..., 0] if channels == 1 else image)
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    pil = pil.resize((new_w, new_h), Image.Resampling.BICUBIC)
    if (new_w, new_h) != (size, size):
        left, top = (new_w - size) // 2, (new_h - size) // 2
        pil = pil.crop((left, top, left + size, top + size))
    return np.asarray(pil).reshape(size, size, channels)


def resize_batch(images: np.ndarray, size: int, pool=None) -> np.ndarray:
    """(B, H, W, C) uint8 -> (B, size, size, C) uint8; `pool` (an executor) resizes in parallel."""
    if images.shape[1:3] == (size, size):
        return images
    mapper = pool.map if pool is not None else map
    return np.stack(list(mapper(lambda im: resize_square(im, size), images)))


def l2_normalise(features: np.ndarray) -> np.ndarray:
    """Rows to unit length (float32). An all-zero row (a blank image under `pixels`) becomes
    the constant direction 1/sqrt(d), so the cosine kernel stays defined."""
    features = np.asarray(features, dtype=np.float32)
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or inf")
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    zero = norms[:, 0] == 0
    if zero.any():
        features = features.copy()
        features[zero] = 1.0
        norms[zero] = np.sqrt(features.shape[1])
    return features / norms


# ---------------------------------------------------------------------------- embedders


def embed_pixels(images: np.ndarray, image_size: int | None = None) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, H*W*C) float32, rows L2-normalised (optionally resized first)."""
    if image_size:
        images = resize_batch(images, int(image_size))
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    return l2_normalise(flat)


def embed_precomputed(dataset) -> np.ndarray:
    if dataset.features is None:
        raise ValueError(f"{dataset.name} has no precomputed features (features.npy beside the images)")
    return l2_normalise(dataset.features)


def embed(dataset, model: str = "ViT-L-14", pretrained: str = "openai", device: str | None = None,
          batch_size: int | None = None, on_progress: Callable[[int, int], None] | None = None,
          should_stop: Callable[[], bool] | None = None, image_size: int | None = None) -> np.ndarray:
    """Embed `dataset.images` -> (N, d) float32, rows L2-normalised.

    `model`: an open_clip architecture (e.g. "ViT-L-14", with `pretrained` an open_clip tag,
    a checkpoint file or "none" for random weights), "pixels" (flattened pixels, resized to
    `image_size` if given) or "precomputed" (the user's features). `on_progress(done, total)`
    is called after each batch; `should_stop()` returning True raises `EmbedCancelled`.
    Raises `WeightsUnavailable` when CLIP weights are neither cached nor downloadable.
    """
    if len(dataset.images) == 0:
        raise ValueError(f"{dataset.name} has no images to embed")
    if should_stop is not None and should_stop():
        raise EmbedCancelled("embedding stopped before it began")
    if model == PIXELS:
        features = embed_pixels(dataset.images, image_size)
    elif model == PRECOMPUTED:
        features = embed_precomputed(dataset)
    else:
        return embed_clip(dataset.images, model, pretrained, device, batch_size, on_progress,
                          should_stop)
    if on_progress is not None:
        on_progress(len(features), len(features))
    return features


# ---------------------------------------------------------------------------- disk cache


def cache_key(fingerprint: str, config: EmbedConfig) -> str:
    """Hash of (dataset fingerprint, model, pretrained, preprocessing, cache version)."""
    pretrained = config.pretrained or "none"
    if config.model not in (PIXELS, PRECOMPUTED) and os.path.isfile(pretrained):
        stat = os.stat(pretrained)  # a checkpoint file: its identity is part of the key
        pretrained = f"{os.path.abspath(pretrained)}:{stat.st_size}:{stat.st_mtime_ns}"
    if config.model in (PIXELS, PRECOMPUTED):
        pretrained = ""
    parts = {"fingerprint": fingerprint, "model": config.model, "pretrained": pretrained,
             "image_size": config.image_size if config.model == PIXELS else None,
             "preprocessing": PREPROCESSING, "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def default_cache_dir() -> Path:
    return storage.default_data_root() / "cache" / "embeddings"


def embed_cached(dataset, config: EmbedConfig, cache_dir=None,
                 on_progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, bool]:
    """`embed` through a disk cache -> (features (N, d) float32, cache_hit).

    Entries are `core.data.cache.ArrayCache` files: <cache_dir>/<key>.npy plus <key>.json (shape,
    config, checksum). A missing, truncated or corrupted entry is a miss and is rebuilt.
    """
    cache = ArrayCache(cache_dir or default_cache_dir(), ".npy")
    key = cache_key(dataset.fingerprint, config)
    cached = _cached_features(cache.load(key), len(dataset))
    if cached is not None:
        if on_progress is not None:
            on_progress(len(cached), len(cached))
        return cached, True
    features = embed(dataset, config.model, config.pretrained, config.device, config.batch_size,
                     on_progress, should_stop, config.image_size)
    cache.store(key, {"features": features}, _cache_meta(features, dataset, config))
    return features, False


def _cached_features(entry: dict | None, n: int) -> np.ndarray | None:
    """The entry's features when they are what `embed` returns for n images: (n, d) float32, finite."""
    features = None if entry is None else entry.get("features")
    ok = (features is not None and features.dtype == np.float32 and features.ndim == 2 and len(features) == n
          and np.isfinite(features).all())
    return features if ok else None


def _cache_meta(features: np.ndarray, dataset, config: EmbedConfig) -> dict:
    return {"shape": list(features.shape), "dtype": "float32", "config": asdict(config), "dataset": dataset.name,
            "fingerprint": dataset.fingerprint, "preprocessing": PREPROCESSING, "cache_version": CACHE_VERSION,
            "divweights": __version__}


def weights_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """False when offline mode is asked for or `host` cannot be reached within `timeout` seconds."""
    return host_reachable(host, timeout)


# ---------------------------------------------------------------------------- open_clip


def _cached_checkpoint(cfg: dict) -> tuple[str | None, list[str]]:
    """(local checkpoint path or None, the places looked at) for an open_clip pretrained cfg."""
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    looked = []
    if cfg.get("file"):
        looked.append(cfg["file"])
        if os.path.isfile(cfg["file"]):
            return cfg["file"], looked
    if cfg.get("hf_hub"):
        from huggingface_hub import constants, try_to_load_from_cache

        repo_id, filename = os.path.split(cfg["hf_hub"])  # "org/repo/" -> default file names
        names = [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME] if not filename else [filename]
        if filename.endswith((".bin", ".pth")):
            names.insert(0, filename[:-4] + ".safetensors")  # open_clip prefers safetensors
        for name in names:
            looked.append(f"hf-hub {repo_id}/{name} in {constants.HF_HUB_CACHE}")
            found = try_to_load_from_cache(repo_id, name)
            if isinstance(found, str) and os.path.isfile(found):
                return found, looked
    if cfg.get("url"):
        path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"]))
        looked.append(path)
        if os.path.isfile(path):
            return path, looked
    return None, looked


def resolve_weights(model: str, pretrained: str | None) -> tuple[str | None, dict]:
    """-> (what to pass to open_clip as `pretrained`, the tag's pretrained cfg).

    A local checkpoint path when the weights are cached, the tag itself when they must be
    downloaded (and the hub is reachable), None for random weights. Raises WeightsUnavailable
    when they are neither cached nor downloadable, without waiting on a network timeout.
    """
    import open_clip

    if model not in open_clip.list_models():
        raise ValueError(f"unknown open_clip model {model!r} (see open_clip.list_models(), or use 'pixels')")
    if pretrained is None or pretrained.lower() in NO_WEIGHTS:
        return None, {}
    if os.path.isfile(pretrained):
        return pretrained, {}
    cfg = open_clip.get_pretrained_cfg(model, pretrained)
    if not cfg:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(model)) or "none"
        raise ValueError(f"{model} has no pretrained tag {pretrained!r} (known: {tags})")
    path, looked = _cached_checkpoint(cfg)
    if path:
        return path, cfg
    if weights_reachable():
        return pretrained, cfg
    raise WeightsUnavailable(
        f"CLIP weights {model}/{pretrained} are not cached and cannot be downloaded (offline); "
        f"looked for: {'; '.join(looked)}. Copy them there, or use --model pixels.")


@functools.lru_cache(maxsize=1)  # one model resident (ViT-L/14 is ~1.7 GB); read-only after load
def load_clip(model: str, pretrained: str | None, device: str):
    """-> (open_clip model in eval mode, mean (1,3,1,1), std (1,3,1,1), input size in px)."""
    import open_clip
    import torch

    checkpoint, cfg = resolve_weights(model, pretrained)
    force_pp = {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # random weights ("none") are the same network in every process
        clip = open_clip.create_model(model, pretrained=checkpoint, device=device,
                                      force_quick_gelu=bool(cfg.get("quick_gelu", False)),
                                      force_preprocess_cfg=force_pp or None)
    clip.eval().requires_grad_(False)
    pp = open_clip.get_model_preprocess_cfg(clip)
    size = pp.get("size", clip.visual.image_size)
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean = torch.tensor(pp["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(pp["std"], device=device).view(1, 3, 1, 1)
    return clip, mean, std, size


def default_batch_size(device: str) -> int:
    """64 on CPU; on CUDA from free memory (ViT-L/14 at 224 px needs ~25 MB per image in
    half precision with headroom), between 32 and 1024."""
    import torch

    if not device.startswith("cuda"):
        return 64
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return int(min(1024, max(32, free // (25 << 20))))


def _to_tensor(batch: np.ndarray, mean, std, device: str):
    """(B, S, S, C) uint8 -> (B, 3, S, S) float32 normalised, on `device`."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device, non_blocking=True)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)  # grey -> RGB
    return (x - mean) / std


def _encode(clip, x, device: str):
    import torch

    if device.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        with torch.autocast("cuda", dtype=dtype):
            return clip.encode_image(x).float()
    return clip.encode_image(x).float()


def embed_clip(images: np.ndarray, model: str, pretrained: str | None, device=None, batch_size=None,
               on_progress=None, should_stop=None) -> np.ndarray:
    """(N, H, W, C) uint8 -> (N, d) float32 CLIP image features, rows L2-normalised.

    CPU resizing of the next batch overlaps the model on the current one; on CUDA a batch
    that runs out of memory is retried at half the size.
    """
    import torch
    from concurrent.futures import ThreadPoolExecutor

    device = resolve_device(device)
    clip, mean, std, size = load_clip(model, pretrained, device)
    batch = int(batch_size or default_batch_size(device))
    out, done, n = [], 0, len(images)
    workers = min(16, os.cpu_count() or 1)  # PIL releases the GIL while resizing
    with ThreadPoolExecutor(1) as prefetcher, ThreadPoolExecutor(workers) as pool, torch.inference_mode():
        def resize_from(start: int):
            return prefetcher.submit(resize_batch, images[start:start + batch], size, pool)

        pending = resize_from(0)
        while done < n:
            if should_stop is not None and should_stop():
                raise EmbedCancelled("embedding stopped")
            resized = pending.result()
            try:
                x = _to_tensor(resized, mean, std, device)
                pending = resize_from(done + len(resized)) if done + len(resized) < n else None
                out.append(_encode(clip, x, device).cpu().numpy())
            except torch.OutOfMemoryError:
                if batch == 1:
                    raise
                batch = max(1, batch // 2)  # retry this part of the data with half the batch
                torch.cuda.empty_cache()
                pending = resize_from(done)
                continue
            done += len(resized)
            if on_progress is not None:
                on_progress(done, n)
    features = np.concatenate(out) if out else np.zeros((0, 0), np.float32)
    return l2_normalise(features)
