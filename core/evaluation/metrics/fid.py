"""Fréchet Inception Distance and the paper's weighted FID.

FID (Heusel et al. 2017) is the Fréchet distance between two Gaussians fitted to features:
    d² = |μ_r − μ_g|² + tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}).
The covariances are the unbiased estimates, normalised by n − 1, as in every peer (torch-fidelity,
pytorch-fid, clean-fid, torchmetrics: `numpy.cov(x, rowvar=False)`), so FID here is their number.
Weighted FID (Berns et al. 2023) fits the real Gaussian with the diversity weights w, using the
reliability-weights form of the same estimator (`numpy.cov(x, rowvar=False, aweights=w)`):
    μ* = Σ wᵢxᵢ / V1,   Σ* = Σ wᵢ(xᵢ−μ*)(xᵢ−μ*)ᵀ / (V1 − V2/V1),   V1 = Σ wᵢ, V2 = Σ wᵢ²,
while the generated statistics stay unweighted. With uniform weights V1 − V2/V1 = (n − 1)·w, so
weighted FID with uniform weights *is* FID. A covariance needs 2 rows (and weights on ≥ 2 rows).

Features may be numpy arrays or torch tensors (e.g. on a GPU): the same lines run on either.
"""

from __future__ import annotations

import numpy as np

from ...arrays import as_float64, xp


def feature_statistics(features: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d) of `features` (n ≥ 2, d); `weights` (n,) ≥ 0, None = uniform.

    Equals `numpy.cov(features, rowvar=False, aweights=weights)` (1/(n − 1) when unweighted).
    """
    x = _as_matrix(features)
    w = x.new_ones(len(x)) if xp(x) is not np else np.full(len(x), 1.0)
    w = w if weights is None else _as_weights(weights, len(x), like=x)
    w = w / w.sum()  # V1 = 1, so the normaliser V1 − V2/V1 is 1 − Σ wᵢ²
    normaliser = 1.0 - float((w * w).sum())
    if normaliser <= 0.0:
        raise ValueError("the weights put all their mass on one row, so the weighted covariance is undefined")
    mu = w @ x
    centred = x - mu
    sigma = (centred * w[:, None]).T @ centred / normaliser
    return mu, (sigma + sigma.T) / 2  # exact symmetry for the eigen-decompositions below


def frechet_distance(mu_real: np.ndarray, sigma_real: np.ndarray, mu_gen: np.ndarray, sigma_gen: np.ndarray) -> float:
    """Fréchet distance between N(mu_real, sigma_real) and N(mu_gen, sigma_gen).

    tr((Σ_r Σ_g)^{1/2}) is computed as Σ √λ over the eigenvalues λ of the symmetric PSD matrix
    Σ_r^{1/2} Σ_g Σ_r^{1/2}, which has the same spectrum as Σ_r Σ_g. Unlike `scipy.linalg.sqrtm`
    of the (non-symmetric, often almost singular) product, this needs no eps offset and never
    returns complex parts; tiny negative eigenvalues from round-off are clipped to zero.
    """
    mu_real, sigma_real, mu_gen, sigma_gen = (as_float64(a) for a in (mu_real, sigma_real, mu_gen, sigma_gen))
    lib = xp(sigma_real)
    diff = mu_real - mu_gen
    root_real = _psd_sqrt(sigma_real)
    middle = root_real @ sigma_gen @ root_real
    eigenvalues = lib.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = lib.sqrt(lib.clip(eigenvalues, 0.0, None)).sum()
    value = diff @ diff + lib.trace(sigma_real) + lib.trace(sigma_gen) - 2.0 * trace_sqrt
    return float(max(float(value), 0.0))  # a distance; round-off can push an exact 0 slightly negative


def fid(features_real: np.ndarray, features_gen: np.ndarray) -> float:
    """FID between real (n, d) and generated (m, d) features (any embedder; recorded by the caller)."""
    return weighted_fid(features_real, features_gen, weights_real=None)


def weighted_fid(features_real: np.ndarray, features_gen: np.ndarray, weights_real: np.ndarray | None) -> float:
    """FID against the weighted real distribution: real stats weighted by `weights_real` (n,),
    generated stats unweighted. `weights_real=None` gives plain FID."""
    mu_real, sigma_real = feature_statistics(features_real, weights_real)
    mu_gen, sigma_gen = feature_statistics(features_gen)
    return frechet_distance(mu_real, sigma_real, mu_gen, sigma_gen)


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via eigh (negative round-off clipped)."""
    lib = xp(matrix)
    eigenvalues, vectors = lib.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * lib.sqrt(lib.clip(eigenvalues, 0.0, None))) @ vectors.T


def _as_matrix(features: np.ndarray) -> np.ndarray:
    x = as_float64(features)
    if x.ndim != 2:
        raise ValueError(f"features must be an (n, d) array, got shape {tuple(x.shape)}")
    if len(x) < 2:
        raise ValueError(f"FID needs at least 2 rows of features on each side for a covariance, got {len(x)}")
    if not bool(xp(x).isfinite(x).all()):
        raise ValueError("features contain NaN or inf")
    return x


def _as_weights(weights, n: int, like):
    """(n,) float64 weights, checked, in the library (and on the device) of `like`."""
    w = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=np.float64).reshape(-1)
    if len(w) != n:
        raise ValueError(f"weights have {len(w)} entries for {n} feature rows")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    return like.new_tensor(w) if xp(like) is not np else w
