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

from ...arrays import as_float64, xp


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
    real, gen = _check_pair(features_real, features_gen)
    if n_subsets < 1:
        raise ValueError(f"KID needs n_subsets ≥ 1, got {n_subsets}")
    size = min(subset_size, len(real), len(gen))
    if size < 2:
        raise ValueError(f"KID needs subsets of at least 2 rows (subset_size {subset_size}, {len(real)} real and "
                         f"{len(gen)} generated rows)")
    rng = np.random.default_rng(seed)
    values = [
        _mmd2(real[rng.choice(len(real), size, replace=False)], gen[rng.choice(len(gen), size, replace=False)])
        for _ in range(n_subsets)
    ]
    return KIDResult(mean=float(np.mean(values)), std=float(np.std(values)), subset_size=size, n_subsets=n_subsets)


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) cubic kernel (aᵀb / d + 1)³."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² between samples x (m, d) and y (n, d), m, n ≥ 2 (sizes may differ):
        Σ_{i≠j} k(xᵢ,xⱼ) / m(m−1) + Σ_{i≠j} k(yᵢ,yⱼ) / n(n−1) − 2 Σ_{i,j} k(xᵢ,yⱼ) / mn."""
    x, y = _check_pair(x, y)
    if min(len(x), len(y)) < 2:
        raise ValueError(f"unbiased MMD² needs at least 2 rows on each side, got {len(x)} and {len(y)}")
    return _mmd2(x, y)


def _mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """`mmd2_unbiased` without the checks (KID checks once, not once per subset)."""
    m, n = len(x), len(y)
    lib = xp(x)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (k_xx.sum() - lib.trace(k_xx)) / (m * (m - 1))  # the diagonal k(xᵢ, xᵢ) is biased
    within_y = (k_yy.sum() - lib.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def _check_pair(features_real, features_gen):
    """Both as float64 (n, d) arrays of equal width with finite values, in their own library."""
    real, gen = as_float64(features_real), as_float64(features_gen)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f"features must be (n, d) arrays of equal width, got {tuple(real.shape)} and {tuple(gen.shape)}")
    if not (bool(xp(real).isfinite(real).all()) and bool(xp(gen).isfinite(gen).all())):
        raise ValueError("features contain NaN or inf")
    return real, gen
