"""Evaluate generated samples against the real data: VS, FID, weighted FID, P/R, IS, KID.

All metrics use features from one embedder (pixels offline, CLIP when its weights are
present), and every result records that embedder, so numbers from different embedders are
never mixed up. `evaluate_samples` works on images; `metrics_from_features` on features.
`evaluate_run` evaluates a training run folder and stores `eval.json` beside its checkpoints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..arrays import on_device
from ..data.dataset import make_dataset
from ..data.datasets import DatasetSpec
from ..data.embed import EmbedConfig, PIXELS, PRECOMPUTED, embed, embed_cached
from ..data.images import png_bytes, tile_grid
from ..data.storage import atomic_write_bytes, atomic_write_json, default_data_root
from ..devices import resolve_device
from ..diversity.vendi import normalise_rows, vendi_score
from .metrics.fid import fid, weighted_fid
from .metrics.inception import inception_score
from .metrics.kid import kid
from .metrics.prc import precision_recall
from ..training import runs
from ..training.runs import read_config

METRICS = ("vs", "fid", "wfid", "precision", "recall", "is", "kid")  # columns of every table
HIGHER_IS_BETTER = {"vs": True, "fid": False, "wfid": False, "precision": True, "recall": True, "is": True, "kid": False}


@dataclass
class EvalConfig:
    embedder: str = "pixels"  # "pixels" or an open_clip model name, the same as for the weights
    pretrained: str = "openai"  # open_clip weights tag (ignored for pixels)
    n_samples: int = 10_000  # generated samples per model
    k: int = 3  # precision/recall neighbourhood size (Kynkäänniemi et al.)
    kid_subsets: int = 100  # KID subsets (Bińkowski et al.)
    kid_subset_size: int = 1000  # rows per KID subset, capped at the smaller set
    inception: str = "auto"  # "auto": zero-shot CLIP when possible, else probe; "probe": always the probe
    batch_size: int = 500  # generation / embedding batch: memory only, never the numbers
    seed: int = 0  # latents of the generated samples and KID subsets
    device: str | None = None  # None: cuda when available

    def embedder_name(self) -> str:
        return "pixels" if self.embedder == "pixels" else f"{self.embedder}/{self.pretrained}"

    @classmethod
    def for_embedder(cls, embedder: EmbedConfig | str, **settings) -> "EvalConfig":
        """Metrics on the features the weights were computed with ('precomputed' has no embedder for
        generated images: pixels then)."""
        embedder = EmbedConfig.parse(embedder) if isinstance(embedder, str) else embedder
        if embedder.model in (PIXELS, PRECOMPUTED):
            return cls(embedder=PIXELS, pretrained="", **settings)
        return cls(embedder=embedder.model, pretrained=embedder.pretrained, **settings)


def metrics_from_features(
    features_real: np.ndarray,
    features_gen: np.ndarray,
    p: np.ndarray | None = None,
    labels_real: np.ndarray | None = None,
    class_names: list[str] | None = None,
    config: EvalConfig | None = None,
    cache_dir: str | Path | None = None,
) -> dict:
    """All metrics for real features (n, d) and generated features (m, d) from one embedder.

    p (n,) diversity weights for the weighted FID (None: no wFID). Returns a flat dict with
    the metric values, `embedder`, `is_source`, `kid_std`, `n_real`, `n_gen`.
    """
    config = config or EvalConfig()
    # FID, wFID, P/R and KID run where config.device says (the GPU when there is one): the same code
    real, gen = on_device([features_real, features_gen], resolve_device(config.device))
    pr = precision_recall(real, gen, k=config.k)
    kid_result = kid(real, gen, config.kid_subsets, config.kid_subset_size, config.seed)
    result = {
        "embedder": config.embedder_name(),
        "vs": vendi_score(features_gen),
        "fid": fid(real, gen),
        "wfid": None if p is None else weighted_fid(real, gen, p),
        "precision": pr.precision,
        "recall": pr.recall,
        "kid": kid_result.mean,
        "kid_std": kid_result.std,
        "n_real": int(len(features_real)),
        "n_gen": int(len(features_gen)),
    }
    return result | _inception(features_real, features_gen, labels_real, class_names, config, cache_dir)


def _inception(features_real, features_gen, labels_real, class_names, config: EvalConfig, cache_dir) -> dict:
    clip = None
    if config.inception == "auto" and config.embedder not in ("pixels", "precomputed"):
        clip = (config.embedder, config.pretrained)
    try:
        result = inception_score(features_real, features_gen, labels_real, class_names, clip, cache_dir, config.device)
    except ValueError as exc:  # unlabelled data without CLIP: IS is undefined, say why
        return {"is": None, "is_source": f"unavailable: {exc}"}
    return {"is": result.score, "is_source": result.source}


def embed_images(images: np.ndarray, config: EvalConfig) -> np.ndarray:
    """(m, H, W, C) uint8 -> (m, d) float32 features with the configured embedder."""
    images = np.asarray(images)
    dataset = make_dataset("generated", images, None, None, [f"gen/{i}" for i in range(len(images))], "generated samples")
    return embed(dataset, config.embedder, config.pretrained, config.device, config.batch_size)


def real_features(dataset, config: EvalConfig, cache_dir: str | Path | None = None) -> np.ndarray:
    """Features of the real dataset through the embedding cache (shared with the weights)."""
    embed_config = EmbedConfig(model=config.embedder, pretrained=config.pretrained, device=config.device)
    return embed_cached(dataset, embed_config, cache_dir)[0]


def evaluate_samples(
    images_gen: np.ndarray,
    dataset,
    p: np.ndarray | None = None,
    embedder: str | None = None,
    config: EvalConfig | None = None,
    features_real: np.ndarray | None = None,
    cache_dir: str | Path | None = None,
) -> dict:
    """Metrics of generated images (m, H, W, C) uint8 against `dataset` (a core.data.datasets.Dataset).

    `embedder` overrides `config.embedder` ("pixels" or an open_clip model); `features_real`
    skips re-embedding the dataset. `cache_dir` holds the embedding cache and the IS probe.
    """
    config = config or EvalConfig()
    if embedder is not None:
        config = replace(config, embedder=embedder)
    if config.embedder == "precomputed":
        raise ValueError("generated images have no precomputed features: evaluate with 'pixels' or a CLIP model")
    _check_images(images_gen, dataset.images)
    if features_real is None:
        features_real = real_features(dataset, config, None if cache_dir is None else Path(cache_dir) / "embeddings")
    features_gen = embed_images(images_gen, config)
    result = metrics_from_features(features_real, features_gen, p, dataset.labels, dataset.class_names, config, cache_dir)
    return result | {"dataset": dataset.name, "dataset_fingerprint": dataset.fingerprint, "config": asdict(config)}


def _check_images(images_gen: np.ndarray, images_real: np.ndarray) -> None:
    images_gen = np.asarray(images_gen)
    if images_gen.dtype != np.uint8 or images_gen.ndim != 4:
        raise ValueError(f"generated images must be (m, H, W, C) uint8, got {images_gen.dtype} {images_gen.shape}")
    if images_gen.shape[1:] != images_real.shape[1:]:
        raise ValueError(f"generated images are {images_gen.shape[1:]} but the data is {images_real.shape[1:]}")


def generate_images(generator, n: int, seed: int = 0, batch_size: int = 500, device: str | None = None) -> np.ndarray:
    """n samples (n, H, W, C) uint8 from a generator mapping z (B, z_dim) -> [0, 1] images.

    Latents come from one seeded CPU stream, so the samples do not depend on batch size or device.
    """
    import torch

    device = device or next(generator.parameters()).device
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    chunks = []
    generator.eval()
    with torch.no_grad():
        for start in range(0, n, batch_size):
            chunks.append(generator(z[start : start + batch_size].to(device)).float().cpu())
    images = torch.cat(chunks).clamp(0, 1).mul(255).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).numpy()


# --- training runs ----------------------------------------------------------------------------


def run_dataset(run_dir: Path, data_root=None):
    """Rebuild the dataset a run trained on from its saved spec, checked against its fingerprint."""
    record = read_config(run_dir)
    dataset = DatasetSpec.from_dict(record.get("dataset", {})).load_saved(data_root)
    if dataset.fingerprint != record.get("dataset_fingerprint"):
        raise ValueError(f"the dataset of {Path(run_dir).name} changed since training (fingerprint differs); "
                         "evaluate it against the data it was trained on")
    return dataset


def evaluate_run(
    run_dir: str | Path,
    config: EvalConfig | None = None,
    dataset=None,
    p_target: np.ndarray | None = None,
    features_real: np.ndarray | None = None,
    data_root=None,
    cache_dir: str | Path | None = None,
) -> dict:
    """Sample `config.n_samples` images from a run's newest checkpoint and score them.

    wFID is measured against `p_target` (default: the run's own weights.npy, uniform for a
    baseline). Writes `eval.json` and `eval_grid.png` (first 64 samples) into the run folder.
    """
    from ..training.checkpoints import load_generator

    config, run_dir = config or EvalConfig(), Path(run_dir)
    dataset = dataset if dataset is not None else run_dataset(run_dir, data_root)
    if p_target is None:
        p_target = np.load(run_dir / "weights.npy", allow_pickle=False)
    generator = load_generator(run_dir, resolve_device(config.device))
    images = generate_images(generator, config.n_samples, config.seed, config.batch_size)
    cache_dir = Path(cache_dir) if cache_dir else Path(data_root or default_data_root()) / "cache"
    result = evaluate_samples(images, dataset, p_target, config=config, features_real=features_real, cache_dir=cache_dir)
    record = runs.read_config(run_dir)
    result |= {"run_id": run_dir.name, "step": runs.read_status(run_dir).get("step"), "weights": record.get("weights"),
               "checkpoint_step": generator.checkpoint_step}
    atomic_write_json(run_dir / "eval.json", result)
    atomic_write_bytes(run_dir / "eval_grid.png", png_bytes(tile_grid(images[:64])))
    return result


# --- summaries over seeds -------------------------------------------------------------------


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval; half-width 0 for one value."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    if len(x) == 1:
        return float(x[0]), 0.0
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return float(x.mean()), float(half)


def nearest_real(features_real: np.ndarray, features_gen: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """(m,) index into the real rows (n, d) of the most cosine-similar one for each generated row
    (m, d): a memorisation check."""
    real = normalise_rows(features_real)
    gen = normalise_rows(features_gen)
    return np.concatenate([(gen[s : s + batch_size] @ real.T).argmax(1) for s in range(0, len(gen), batch_size)])
