"""Inception Score as mutual information, as the paper reports it (no exponential, no splits).

    IS = I(y; x) = H(E_x[p(y|x)]) − E_x[H(p(y|x))]   (nats, over the whole generated set)

It is log(C) when every sample is classified with certainty and the C classes are used
equally, and 0 when every sample gets the same class distribution. Class probabilities come
from zero-shot CLIP when the features are CLIP features and its text tower can be loaded;
otherwise from a logistic-regression probe trained on the labelled real features (cached on
disk as npz coefficients). The result records which source was used. Probabilities are checked,
never renormalised: an empty array, NaN, negative entries or a row not summing to 1 (±1e-6) is refused.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ...arrays import to_numpy
from ...data.cache import ArrayCache
from ...data.storage import fingerprint_arrays

PROMPT_TEMPLATE = "a photo of a {}."  # CLIP's standard zero-shot prompt
PROBE_C = 10.0  # inverse L2 strength of the probe on standardised features: weak, so the probe is confident
PROBE_ARRAYS = ("coef", "intercept", "classes")  # what fit_probe returns, and its cache entry holds


class InceptionResult(NamedTuple):
    score: float  # mutual information in nats
    source: str  # "clip-zero-shot:MODEL/PRETRAINED" or "classifier:logreg"
    n_classes: int


ROW_SUM_TOLERANCE = 1e-6  # |Σ_c p(c|x) − 1| allowed per row; beyond it the rows are refused, not renormalised


def inception_score_from_probs(probs: np.ndarray) -> float:
    """Mutual information between class and sample, probs (m, C) (numpy or torch), each row
    non-negative and summing to 1 within `ROW_SUM_TOLERANCE`; used as given, never renormalised."""
    p = _check_probabilities(probs)
    return float(max(_entropy(p.mean(axis=0)) - _entropy(p).mean(), 0.0))


def _check_probabilities(probs) -> np.ndarray:
    """(m, C) float64 numpy array of class probabilities, or a one-sentence ValueError."""
    p = np.asarray(to_numpy(probs), dtype=np.float64)
    if p.ndim != 2 or p.size == 0:
        raise ValueError(f"class probabilities must be a non-empty (m, C) array, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"class probabilities contain NaN or inf (row {_first_row(~np.isfinite(p))})")
    if (p < 0).any():
        raise ValueError(f"class probabilities must be non-negative (row {_first_row(p < 0)} is not)")
    off = np.flatnonzero(np.abs(p.sum(axis=1) - 1.0) > ROW_SUM_TOLERANCE)
    if len(off):
        raise ValueError(f"each row of class probabilities must sum to 1 (tolerance {ROW_SUM_TOLERANCE:g}), but "
                         f"row {int(off[0])} sums to {p[off[0]].sum():.8g} ({len(off)} of {len(p)} rows are off)")
    return p


def _first_row(mask: np.ndarray) -> int:
    """Index of the first row of an (m, C) boolean mask with a True entry."""
    return int(np.flatnonzero(mask.any(axis=1))[0])


def _entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) along the last axis, 0 log 0 = 0."""
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=-1)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


# --- zero-shot CLIP -----------------------------------------------------------------------


def zero_shot_probabilities(features_gen: np.ndarray, text_features: np.ndarray, logit_scale: float = 100.0) -> np.ndarray:
    """(m, C) softmax of scaled cosine similarity between image features (m, d) and one
    text embedding per class (C, d); both are L2-normalised here."""
    images = _unit_rows(np.asarray(features_gen, np.float64))
    texts = _unit_rows(np.asarray(text_features, np.float64))
    return softmax(logit_scale * images @ texts.T)


def clip_text_features(class_names: list[str], model: str, pretrained: str, device: str | None = None) -> tuple[np.ndarray, float]:
    """Text embeddings (C, d) of `PROMPT_TEMPLATE` per class, and the model's logit scale."""
    import torch

    clip, tokenizer = _load_clip(model, pretrained, device or "cpu")
    tokens = tokenizer([PROMPT_TEMPLATE.format(name) for name in class_names]).to(device or "cpu")
    with torch.no_grad():
        text = clip.encode_text(tokens).float().cpu().numpy()
        scale = float(clip.logit_scale.exp().item())
    return text, scale


@functools.lru_cache(maxsize=2)
def _load_clip(model: str, pretrained: str, device: str):
    """Read-only cached model loader (the one shared object allowed); raises if weights are missing."""
    import open_clip

    clip = open_clip.create_model(model, pretrained=pretrained or None, device=device).eval()
    return clip, open_clip.get_tokenizer(model)


# --- classifier probe on the labelled real data -------------------------------------------


def fit_probe(features_real: np.ndarray, labels_real: np.ndarray, cache_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multinomial logistic regression on real features (n, d) with labels (n,).

    Returns coef (C, d), intercept (C,), classes (C,) — binary problems are expanded to two
    rows (a zero row for the first class) so one softmax serves every case. Cached under
    `cache_dir` as `probe_<key>.npz` + `.json` (`core.data.cache.ArrayCache`, no pickle), keyed by
    a fingerprint of features, labels and settings; a damaged entry is refitted.
    """
    labels = np.asarray(labels_real, dtype=np.int64)
    key = "probe_" + fingerprint_arrays(np.asarray(features_real, np.float32), labels, extra=f"logreg-C={PROBE_C}")
    cache = ArrayCache(cache_dir, ".npz") if cache_dir is not None else None
    saved = cache.load(key) if cache is not None else None
    if saved is not None and set(saved) == set(PROBE_ARRAYS):
        return tuple(saved[name] for name in PROBE_ARRAYS)
    probe = _train_probe(np.asarray(features_real, np.float64), labels)
    if cache is not None:
        cache.store(key, dict(zip(PROBE_ARRAYS, probe)), {"probe": "logreg", "C": PROBE_C})
    return probe


def _train_probe(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    classes = np.unique(labels)
    if len(classes) < 2:
        raise ValueError("the classifier probe needs labelled real data with at least 2 classes")
    # standardise so the regularisation strength does not depend on the embedder's scale
    # (L2-normalised rows have tiny per-feature spreads); the scaling is folded into coef
    mean, std = features.mean(axis=0), features.std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    model = LogisticRegression(C=PROBE_C, max_iter=1000).fit((features - mean) / std, labels)
    coef = model.coef_ / std
    intercept = model.intercept_ - coef @ mean
    if len(classes) == 2:  # sklearn stores one logit for the positive class
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef.astype(np.float64), intercept.astype(np.float64), model.classes_.astype(np.int64)


def probe_probabilities(features: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """(m, C) class probabilities of the probe."""
    return softmax(np.asarray(features, np.float64) @ coef.T + intercept)


# --- one entry point ----------------------------------------------------------------------


def inception_score(
    features_real: np.ndarray | None,
    features_gen: np.ndarray,
    labels_real: np.ndarray | None = None,
    class_names: list[str] | None = None,
    clip: tuple[str, str] | None = None,
    cache_dir: str | Path | None = None,
    device: str | None = None,
) -> InceptionResult:
    """IS of generated features (m, d), real features (n, d) first as in every metric here.

    Zero-shot CLIP when `clip=(model, pretrained)` and class names are given and the model loads,
    else the probe fitted on (features_real, labels_real (n,)); features_real may be None when only
    zero-shot CLIP is wanted."""
    features_gen = _check_features(features_gen, "generated")
    if clip is not None and class_names:
        try:
            text, scale = clip_text_features(list(class_names), clip[0], clip[1], device)
        except Exception:  # weights not cached and no network: fall back to the probe
            text = None
        if text is not None:
            probs = zero_shot_probabilities(features_gen, text, scale)
            return InceptionResult(inception_score_from_probs(probs), f"clip-zero-shot:{clip[0]}/{clip[1]}", len(class_names))
    if features_real is None or labels_real is None:
        raise ValueError("Inception Score needs CLIP with class names, or labelled real data for the probe")
    coef, intercept, classes = fit_probe(_check_features(features_real, "real"), to_numpy(labels_real), cache_dir)
    probs = probe_probabilities(features_gen, coef, intercept)
    return InceptionResult(inception_score_from_probs(probs), "classifier:logreg", len(classes))


def _check_features(features, which: str) -> np.ndarray:
    """(n, d) float64 numpy copy of numpy or torch features, non-empty and finite."""
    x = np.asarray(to_numpy(features), dtype=np.float64)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"{which} features must be a non-empty (n, d) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{which} features contain NaN or inf")
    return x


def _unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
