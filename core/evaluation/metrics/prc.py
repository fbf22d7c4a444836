"""Improved precision and recall (Kynkäänniemi et al. 2019), k-NN manifolds with k = 3.

Each set's manifold is the union of balls around its points, the radius of a ball being the
distance to that point's k-th nearest neighbour in the same set (itself excluded).
- precision: fraction of *generated* samples inside the *real* manifold (fidelity);
- recall: fraction of *real* samples inside the *generated* manifold (coverage).
Distances are Euclidean in float64, computed in row blocks of `batch_size`; the block size
changes memory use only, never the result. Features may be numpy arrays or torch tensors (e.g. on a
GPU): the same lines run on either.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...arrays import as_float64, xp


class PrecisionRecall(NamedTuple):
    precision: float  # generated samples inside the real manifold
    recall: float  # real samples inside the generated manifold


def precision_recall(
    features_real: np.ndarray, features_gen: np.ndarray, k: int = 3, batch_size: int = 4096
) -> PrecisionRecall:
    """Precision and recall of generated features (m, d) against real features (n, d)."""
    _check_positive_int("k", k, "the neighbour whose distance is each ball's radius")
    _check_positive_int("batch_size", batch_size, "rows per distance block")
    real, gen = _as_float64(features_real), _as_float64(features_gen)
    if real.shape[1] != gen.shape[1]:
        raise ValueError(f"feature widths differ: real {real.shape[1]}, generated {gen.shape[1]}")
    if min(len(real), len(gen)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} real and generated samples")
    precision = manifold_coverage(real, knn_radii(real, k, batch_size), gen, batch_size)
    recall = manifold_coverage(gen, knn_radii(gen, k, batch_size), real, batch_size)
    return PrecisionRecall(precision=precision, recall=recall)


def knn_radii(features: np.ndarray, k: int = 3, batch_size: int = 4096) -> np.ndarray:
    """(n,) distance from each row to its k-th nearest neighbour among the other rows."""
    blocks = []
    for start in range(0, len(features), batch_size):
        block = pairwise_distances(features[start : start + batch_size], features)
        # the (k+1)-th smallest distance of a row: the smallest is the point itself (distance 0)
        blocks.append(block.kthvalue(k + 1, dim=1).values if xp(block) is not np else np.partition(block, k, axis=1)[:, k])
    return xp(features).concatenate(blocks)


def manifold_coverage(
    features_ref: np.ndarray, radii_ref: np.ndarray, features_query: np.ndarray, batch_size: int = 4096
) -> float:
    """Fraction of query rows (m, d) inside the reference manifold: within radii_ref[j] (n,) of some
    reference row j (n, d). Precision: ref = real, query = generated; recall: the other way round."""
    inside = 0
    for start in range(0, len(features_query), batch_size):
        block = pairwise_distances(features_query[start : start + batch_size], features_ref)
        inside += int((block <= radii_ref[None, :]).any(1).sum())
    return inside / len(features_query)


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Euclidean distances; squared distances clipped at 0 against round-off."""
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return xp(a).sqrt(xp(a).clip(squared, 0.0, None))


def _as_float64(features: np.ndarray) -> np.ndarray:
    x = as_float64(features)
    if x.ndim != 2 or not bool(xp(x).isfinite(x).all()):
        raise ValueError("features must be a finite (n, d) array")
    return x


def _check_positive_int(name: str, value, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer ≥ 1 ({meaning}), got {value!r}")
