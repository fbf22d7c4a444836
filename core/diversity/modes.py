"""The modes view: the dataset's "modes" are the eigenvectors of the weighted feature covariance.

With X (n, d) L2-normalised rows, C(p) = Xᵀ diag(p) X has trace 1 and its eigenvalues are exactly the
spectrum whose entropy gives the Vendi Score (core.diversity.vendi), so an eigenvalue is the share of
the sampled data's variety along that direction (cf. FKEA's top images per eigenvector). Mode
balancing made visible: the dataset's modes (eigenvectors of C under uniform p) keep their
directions, and under the diversity weights the share along each, vᵀ C(p) v, moves towards equal.

Everything is computed on the rank-reduced side (F (n, r), r ≤ min(n, d), F Fᵀ = X Xᵀ): one r×r
eigendecomposition per p, never an n×n matrix when n > d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .contribution import reduced_features
from .vendi import check_probabilities, score_from_eigenvalues


@dataclass
class ModesView:
    """The spectrum under uniform p and under the weights, and the images that load on each mode."""

    shares_uniform: np.ndarray  # (r,) eigenvalues of C(uniform), largest first; sum 1
    shares_weighted: np.ndarray  # (r,) eigenvalues of C(p), largest first; sum 1
    weighted_along_uniform: np.ndarray  # (r,) vᵀ C(p) v for each uniform mode v (same order); sum 1
    top_images: list[np.ndarray]  # per shown mode: indices with the largest squared projection, highest first
    vs_uniform: float  # exp(entropy of shares_uniform)
    vs_weighted: float  # exp(entropy of shares_weighted)


def spectrum(F: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (r,) largest first, clipped at 0, and eigenvectors (r, r) of Fᵀ diag(p) F."""
    lam, U = np.linalg.eigh((F * p[:, None]).T @ F)
    return np.maximum(lam[::-1], 0.0), U[:, ::-1]


def modes_view(features, p=None, n_modes: int = 6, per_mode: int = 8, reduced: np.ndarray | None = None) -> ModesView:
    """The modes of features (n, d) under uniform p and under p (n,) (None = uniform).

    n_modes: how many leading modes get top images; per_mode: how many images each."""
    F = reduced if reduced is not None else reduced_features(features)
    n = F.shape[0]
    p = check_probabilities(p, n)
    if n_modes < 1 or per_mode < 1:
        raise ValueError("show at least one mode and one image per mode")
    uniform = np.full(n, 1.0 / n)
    lam_u, V = spectrum(F, uniform)
    lam_w, _ = spectrum(F, p)
    projections = F @ V[:, :n_modes]  # (n, m): x_i · v_k, the sign of v_k is arbitrary
    along = ((F @ V) ** 2 * p[:, None]).sum(0)  # vᵀ C(p) v = Σ_i p_i (x_i · v)²
    per_mode = min(per_mode, n)
    top = [np.argsort(-(projections[:, k] ** 2), kind="stable")[:per_mode] for k in range(projections.shape[1])]
    return ModesView(lam_u / lam_u.sum(), lam_w / lam_w.sum(), along / along.sum(), top,
                     score_from_eigenvalues(lam_u), score_from_eigenvalues(lam_w))
