"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").

KID is the unbiased estimate of MMD² with the cubic polynomial kernel
    k(x, y) = (xᵀy / d + 1)³,
averaged over random subsets: `n_subsets` draws of `subset_size` real and generated rows (each
draw without replacement), reported as mean and standard deviation over the draws. Unlike FID
it is unbiased, so it is ≈ 0 (and can be slightly negative) for two samples of one distribution.
Features may be numpy arrays or torch tensors (e.g. on a GPU); the subsets are drawn on the CPU from
one seeded numpy generator, so both give the same numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from core.arrays import as_float64, xp


class KIDResult(NamedTuple):
    mean: float  # mean unbiased MMD² over subsets
    std: float  # standard deviation over subsets
    subset_size: int  # rows per subset actually used (≤ both set sizes)
    n_subsets: int


def kid(
    features_real: np.ndarray,
    features_gen: np.ndarray,
    n_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KIDResult:
    """KID between real (n, d) and generated (m, d) features; subsets capped at min(n, m) rows."""
    real, gen = as_float64(features_real), as_float64(features_gen)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f"features must be (n, d) arrays of equal width, got {tuple(real.shape)} and {tuple(gen.shape)}")
    size = min(subset_size, len(real), len(gen))
    if size < 2:
        raise ValueError("KID needs at least 2 real and 2 generated samples")
    rng = np.random.default_rng(seed)
    values = [
        mmd2_unbiased(real[rng.choice(len(real), size, replace=False)], gen[rng.choice(len(gen), size, replace=False)])
        for _ in range(n_subsets)
    ]
    return KIDResult(mean=float(np.mean(values)), std=float(np.std(values)), subset_size=size, n_subsets=n_subsets)


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) cubic kernel (aᵀb / d + 1)³."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between equal-size samples x, y (m, d): within-set means skip the diagonal."""
    m = len(x)
    lib = xp(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within = (k_xx.sum() - lib.trace(k_xx) + k_yy.sum() - lib.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())
