"""The probability-weighted Vendi Score (Friedman & Dieng 2023; weighted form of Berns et al. 2023).

VS_q(K, p) = exp(H_q(λ)) where λ are the eigenvalues of diag(√p) K diag(√p) and H_q is the Rényi
entropy of order q (Shannon for q = 1, the paper's case). With cosine similarity of features X
(rows L2-normalised) the nonzero eigenvalues equal those of the d×d matrix Xᵀ diag(p) X, so the
score is computed on whichever side is smaller. Numpy only: no files, no plots.
"""

from __future__ import annotations

import numpy as np


def check_feature_array(features) -> np.ndarray:
    """Shape and dtype checks of an (n, d) numeric array (no copy); values are checked later."""
    X = np.asarray(features)
    if X.ndim != 2:
        raise ValueError(f"features must be a 2-D array (n, d); got shape {X.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"features must have at least one row and one column; got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise ValueError(f"features must be numeric; got dtype {X.dtype}")
    return X


def check_row_norms(all_finite: bool, zero_rows) -> None:
    """Value checks shared by the numpy and torch paths: no NaN/inf, no all-zero row."""
    if not all_finite:
        raise ValueError("features contain NaN or infinite values")
    if len(zero_rows):
        raise ValueError(f"{len(zero_rows)} feature rows are all zero (first: row {int(zero_rows[0])}); "
                         "cosine similarity is undefined")


def normalise_rows(features) -> np.ndarray:
    """(n, d) float or uint8 -> (n, d) float64, rows L2-normalised. Refuses NaN/inf and zero rows."""
    X = check_feature_array(features).astype(np.float64)  # a copy: the caller's array is untouched
    norms = np.linalg.norm(X, axis=1)
    check_row_norms(bool(np.isfinite(X).all()), np.flatnonzero(norms == 0))
    X /= norms[:, None]  # in place: no second (n, d) array
    return X


def check_probabilities(p, n: int | None = None) -> np.ndarray:
    """None -> uniform over n; else a float64 vector (n,) (any length when n is None), non-negative,
    summing to 1 (tolerance 1e-6). The one check of probability vectors in divweights."""
    if p is None:
        return np.full(n, 1.0 / n)
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or (n is not None and p.shape != (n,)):
        expected = f"({n},) to match the items" if n is not None else "(n,), non-empty"
        raise ValueError(f"probabilities p must have shape {expected}; got {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("probabilities p must be finite and non-negative")
    if abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(f"probabilities p must sum to 1; they sum to {p.sum():.8g}")
    return p


def score_from_eigenvalues(eigenvalues, q: float = 1.0) -> float:
    """exp of the order-q Rényi entropy of the spectrum (n,) of an n×n matrix, round-off dropped.

    Eigenvalues λ ≤ n·eps·λ_max are round-off of a rank-deficient matrix (the numerical-rank rule of
    `core.diversity.weights.reduce_rank`): for q < 1 their λ^q would add up (35 values of ~1e-17
    shift the q = 0.5 score of a rank-5, 40-item kernel by ~1e-7), so they are skipped, as zeros are.
    """
    if not q > 0:
        raise ValueError(f"order q must be > 0 (or inf); got {q}")
    lam = np.asarray(eigenvalues, dtype=np.float64).reshape(-1)
    if lam.size == 0 or not lam.max() > 0:
        raise ValueError("the spectrum has no positive eigenvalue, so the Vendi Score is undefined")
    lam = lam[lam > len(lam) * np.finfo(np.float64).eps * lam.max()]
    lam = lam / lam.sum()  # the spectrum sums to trace = 1 up to round-off
    if np.isinf(q):
        return float(1.0 / lam.max())
    if q == 1.0:
        return float(np.exp(-np.sum(lam * np.log(lam))))
    return float(np.exp(np.log(np.sum(lam**q)) / (1.0 - q)))


def weighted_spectrum_features(X: np.ndarray, p: np.ndarray, side: str = "auto") -> np.ndarray:
    """Eigenvalues of diag(√p) X Xᵀ diag(√p) (n×n, side="items") or Xᵀ diag(p) X (d×d, side="features").

    X (n, d) rows L2-normalised. "auto" picks the smaller side; the nonzero eigenvalues agree.
    """
    n, d = X.shape
    if side == "auto":
        side = "items" if n <= d else "features"
    Z = X * np.sqrt(p)[:, None]  # (n, d): Z Zᵀ = diag(√p) K diag(√p), Zᵀ Z = Xᵀ diag(p) X
    if side == "items":
        return np.linalg.eigvalsh(Z @ Z.T)
    if side == "features":
        return np.linalg.eigvalsh(Z.T @ Z)
    raise ValueError(f"side must be 'auto', 'items' or 'features'; got {side!r}")


def vendi_score(features, p=None, q: float = 1.0, side: str = "auto") -> float:
    """Weighted Vendi Score of items with features (n, d) under cosine similarity.

    p: probabilities (n,) summing to 1, or None for uniform (= the unweighted Vendi Score).
    """
    X = normalise_rows(features)
    p = check_probabilities(p, X.shape[0])
    return score_from_eigenvalues(weighted_spectrum_features(X, p, side), q)


def check_kernel(K) -> np.ndarray:
    """A symmetric (n, n) similarity matrix with unit diagonal, finite; negative entries allowed."""
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 1:
        raise ValueError(f"K must be a square (n, n) matrix; got shape {K.shape}")
    if not np.isfinite(K).all():
        raise ValueError("K contains NaN or infinite values")
    if not np.allclose(K, K.T, atol=1e-8):
        raise ValueError("K must be symmetric")
    if not np.allclose(np.diag(K), 1.0, atol=1e-6):
        raise ValueError("K must have a unit diagonal (each item is fully similar to itself)")
    return K


def vendi_score_kernel(K, p=None, q: float = 1.0) -> float:
    """Weighted Vendi Score from a similarity matrix K (n, n): symmetric PSD, unit diagonal.

    Unlike the published code (which takes log(K) entries and returns NaN for negative
    similarities), only the spectrum is used, so negative entries are fine as long as K is PSD.
    """
    K = check_kernel(K)
    p = check_probabilities(p, K.shape[0])
    sqrt_p = np.sqrt(p)
    eigenvalues = np.linalg.eigvalsh(sqrt_p[:, None] * K * sqrt_p[None, :])
    if eigenvalues.min() < -1e-8 * max(1.0, eigenvalues.max()):
        raise ValueError(f"K must be positive semi-definite; smallest eigenvalue {eigenvalues.min():.3g}")
    return score_from_eigenvalues(eigenvalues, q)
