"""Weighting schemes to compare diversity weights against: the reweightings a practitioner tries first.

Every scheme turns a dataset (features (n, d) and/or labels (n,)) into a probability vector p (n,),
the same object diversity weights are, so it is exported and trained with the same paths:

  uniform          p_i = 1/n (the baseline)
  diversity        Algorithm 1 (core.diversity.weights), unchanged
  class-balanced   equal mass per label, uniform inside a class
  inverse-density  p ∝ 1 / local density, the density from k-nearest-neighbour distances in feature
                   space (what "uniqueness" scores of data-curation tools amount to)
  leverage         ridge leverage scores τ_i = x_iᵀ (XᵀX + λI)⁻¹ x_i of the feature matrix (a known
                   mode-coverage sampler for GANs)

Features are compared as everywhere in divweights: rows L2-normalised (cosine geometry). Numpy only;
no n×n matrix when n is large (kNN is blocked, leverage solves on the d×d side when d < n).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .contribution import nearest_neighbours
from .inspect import class_mass, effective_sample_size, entropy
from .vendi import check_probabilities, normalise_rows, vendi_score
from .weights import optimise_weights

SCHEMES = ("uniform", "diversity", "class-balanced", "inverse-density", "leverage")
NEEDS_LABELS = ("class-balanced",)
NEEDS_FEATURES = ("diversity", "inverse-density", "leverage")


@dataclass
class SchemeConfig:
    scheme: str = "diversity"  # one of SCHEMES
    gamma: float = 0.8  # diversity weights only: γ of Algorithm 1
    k: int = 10  # inverse-density only: neighbours whose mean distance estimates the local density
    ridge: float = 1e-3  # leverage only: λ as a fraction of trace(XᵀX) (= n for unit rows)
    block_size: int = 2048  # inverse-density only: rows per block of the distance computation (memory only)

    def validate(self) -> "SchemeConfig":
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown weighting scheme {self.scheme!r}; choose one of {', '.join(SCHEMES)}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1]; got {self.gamma}")
        if self.k < 1 or self.block_size < 1:
            raise ValueError(f"k and block_size must be at least 1; got k={self.k}, block_size={self.block_size}")
        if not self.ridge > 0:
            raise ValueError(f"ridge must be > 0; got {self.ridge}")
        return self

    def label(self) -> str:
        """How runs trained with this scheme are described ("gamma=0.8" keeps the older DivW label)."""
        if self.scheme == "diversity":
            return f"gamma={self.gamma:g}"
        if self.scheme == "inverse-density":
            return f"inverse-density k={self.k}"
        return self.scheme


# --- the schemes -------------------------------------------------------------------------------------


def uniform_weights(n: int) -> np.ndarray:
    """(n,) all 1/n: the baseline."""
    if n < 1:
        raise ValueError("need at least one item")
    return np.full(n, 1.0 / n)


def class_balanced_weights(labels) -> np.ndarray:
    """(n,) equal total mass per label present, uniform within each class: p_i = 1 / (C · n_class(i))."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"class-balanced weights need labels of shape (n,); got {labels.shape}")
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return check_probabilities(1.0 / (len(counts) * counts[inverse]))


def knn_distances(features, k: int = 10, block_size: int = 2048) -> np.ndarray:
    """(n, k) Euclidean distances of each L2-normalised row to its k nearest other rows, ascending.

    The blocked neighbour search of the Inspect tab (core.diversity.contribution.nearest_neighbours)
    in float64: unit rows have |a − b|² = 2 − 2 a·b. Exact duplicates are at distance 0 (they are
    neighbours like any other row); a row is never its own neighbour.
    """
    n = len(features)
    if not 1 <= k < n:
        raise ValueError(f"k must lie in [1, n - 1] = [1, {n - 1}]; got {k}")
    _, similarities = nearest_neighbours(features, k, block=block_size, dtype=np.float64)
    return np.sqrt(np.maximum(2.0 - 2.0 * similarities, 0.0))


def inverse_density_weights(features, k: int = 10, block_size: int = 2048) -> np.ndarray:
    """(n,) p ∝ 1 / density, density_i ∝ 1 / mean distance to the k nearest neighbours.

    The textbook kNN estimate k / (n · V_d · r_k^d) needs r^d, which over/underflows for d in the
    hundreds and lets one outlier take all the mass; the mean kNN distance (exponent 1) is the
    "uniqueness" score curation tools use. Points in a clump of more than k exact copies have
    distance 0: they keep a floor of 1e-6 × the mean so no example becomes impossible to draw.
    """
    spread = knn_distances(features, k, block_size).mean(axis=1)  # (n,)
    mean = spread.mean()
    if not mean > 0:  # every row has k exact copies: nothing to tell them apart
        return uniform_weights(len(spread))
    spread = np.maximum(spread, 1e-6 * mean)
    return check_probabilities(spread / spread.sum())


def ridge_leverage_scores(features, ridge: float = 1e-3) -> np.ndarray:
    """(n,) τ_i = x_iᵀ (XᵀX + λI)⁻¹ x_i for L2-normalised rows X (n, d), λ = ridge · trace(XᵀX).

    Solved on the smaller side: the d×d system when d ≤ n, else the n×n identity
    diag(K (K + λI)⁻¹) with K = X Xᵀ (the same numbers: X(XᵀX + λI)⁻¹Xᵀ = XXᵀ(XXᵀ + λI)⁻¹).
    """
    X = normalise_rows(features)
    n, d = X.shape
    lam = ridge * float(n)  # trace(XᵀX) = n for unit rows
    if d <= n:
        G = X.T @ X + lam * np.eye(d)  # (d, d), positive definite for λ > 0
        return np.einsum("ij,ij->i", X, np.linalg.solve(G, X.T).T)
    K = X @ X.T
    return np.diag(np.linalg.solve(K + lam * np.eye(n), K)).copy()


def leverage_weights(features, ridge: float = 1e-3) -> np.ndarray:
    """(n,) p = τ / Σ τ: rows in directions few other rows span get more mass."""
    if not ridge > 0:
        raise ValueError(f"ridge must be > 0; got {ridge}")
    tau = ridge_leverage_scores(features, ridge)
    return check_probabilities(tau / tau.sum())


# --- one entry point -------------------------------------------------------------------------------------


@dataclass
class SchemeResult:
    scheme: str  # one of SCHEMES
    p: np.ndarray  # (n,) float64, sums to 1
    label: str  # how a run trained with p is described (SchemeConfig.label)
    extra: dict = field(default_factory=dict)  # e.g. the diversity engine's WeightsResult


def check_inputs(config: SchemeConfig, features, labels, n: int | None = None) -> None:
    """Clear messages for a scheme asked for without what it needs."""
    if config.scheme in NEEDS_LABELS and labels is None:
        raise ValueError(f"the {config.scheme} scheme needs labels; this dataset has none")
    if config.scheme in NEEDS_FEATURES and features is None:
        raise ValueError(f"the {config.scheme} scheme needs features")
    if features is not None and labels is not None and len(labels) != len(features):
        raise ValueError(f"{len(labels)} labels but {len(features)} feature rows")
    if config.scheme == "uniform" and features is None and labels is None and n is None:
        raise ValueError("uniform weights need the number of items")


def scheme_weights(config: SchemeConfig, features=None, labels=None, n: int | None = None,
                   diversity=None) -> SchemeResult:
    """The probability vector of `config.scheme` for features (n, d) and/or labels (n,).

    diversity: a callable features -> core.diversity.weights.WeightsResult for γ = config.gamma
    (the workbench passes its cached, progress-reporting `weights`); default: `optimise_weights`.
    """
    config = config.validate()
    check_inputs(config, features, labels, n)
    scheme = config.scheme
    if scheme == "uniform":
        count = n if n is not None else len(features if features is not None else labels)
        return SchemeResult(scheme, uniform_weights(count), config.label())
    if scheme == "class-balanced":
        return SchemeResult(scheme, class_balanced_weights(labels), config.label())
    if scheme == "inverse-density":  # a dataset smaller than k + 1 uses every other point as a neighbour
        config = replace(config, k=max(1, min(config.k, len(features) - 1)))
        return SchemeResult(scheme, inverse_density_weights(features, config.k, config.block_size), config.label())
    if scheme == "leverage":
        return SchemeResult(scheme, leverage_weights(features, config.ridge), config.label())
    if diversity is None:
        diversity = lambda x: optimise_weights(x, gamma=config.gamma)  # noqa: E731
    result = diversity(features)
    return SchemeResult(scheme, check_probabilities(result.p), config.label(), {"weights_result": result})


# --- side by side ------------------------------------------------------------------------------------


def scheme_summary(p, features=None, labels=None) -> dict:
    """What the Weights tab compares: VS (features given), entropy (nats), ESS, the largest weight
    (as p and as n·p) and the mass per class (labels given: {class: mass})."""
    p = check_probabilities(p)
    row = {"vs": None if features is None else vendi_score(features, p), "entropy": entropy(p),
           "ess": effective_sample_size(p), "max_p": float(p.max()), "max_relative": float(p.max() * p.size)}
    if labels is not None:
        mass = class_mass(p, labels)
        row["class_mass"] = {_plain(c): float(m) for c, m in zip(mass.classes, mass.weighted)}
    return row


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def compare_schemes(results: dict[str, np.ndarray], features=None, labels=None) -> list[dict]:
    """One summary row per scheme ({"scheme": name, **scheme_summary}) in the order given."""
    return [{"scheme": name, **scheme_summary(p, features, labels)} for name, p in results.items()]
