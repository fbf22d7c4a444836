"""The Learn tab's maths: the paper's worked example, a toy Gaussian mixture, and Algorithm 1 one step
at a time. Everything runs through the same engine as real data (core.diversity.vendi / .weights).

- The worked example (Berns et al. 2023, eq. 2–4): four items, the last three identical. Under uniform
  p the Vendi Score is exp(H(¼, ¾)) = 1.755…, the same as the 2-item reduction (two distinct items with
  masses ¼ and ¾); p = (½, ⅙, ⅙, ⅙) balances the two kinds and gives exactly 2.
- A similarity matrix K (n, n) is fed to Algorithm 1 as features F (n, r) with F Fᵀ = K, so the
  cosine-similarity engine sees exactly K.
- Cosine similarity of raw 2-D points only sees angles (rank 2, VS ≤ 2); the toy mixture uses a
  Gaussian (RBF) kernel through random Fourier features (Rahimi & Recht 2007), whose rows have unit
  norm, so the same d×d engine applies; `rff_check` states the approximation error against the
  exact n×n kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import weights as engine
from .inspect import class_mass, effective_sample_size, entropy
from .vendi import (check_probabilities, normalise_rows, score_from_eigenvalues, vendi_score,
                                  weighted_spectrum_features)

# eq. 2–4 of the paper: item 0 is unlike the others; items 1–3 are one image three times
PAPER_K = np.array([[1.0, 0.0, 0.0, 0.0],
                    [0.0, 1.0, 1.0, 1.0],
                    [0.0, 1.0, 1.0, 1.0],
                    [0.0, 1.0, 1.0, 1.0]])
PAPER_P_BALANCED = np.array([1 / 2, 1 / 6, 1 / 6, 1 / 6])  # each kind gets half the mass: VS = 2
MAX_TOY_POINTS = 2000  # the toy mixture stays instant
MAX_EXACT_CHECK = 2000  # largest n whose exact n×n kernel is formed for the error check


# ----------------------------------------------------------------------------- similarity matrices

def kernel_problems(K) -> list[str]:
    """Plain-language reasons a table is not a similarity matrix ([] when it is one).

    A similarity matrix is square, symmetric (a is as similar to b as b to a), has ones on the
    diagonal (each item is identical to itself) and is positive semi-definite (some set of items
    can have exactly these similarities)."""
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError):
        return ["Every entry must be a number."]
    if K.ndim != 2 or K.shape[0] != K.shape[1] or K.shape[0] < 1:
        return [f"The table must be square (one row and one column per item); it is {K.shape}."]
    if not np.isfinite(K).all():
        return ["Every entry must be a finite number (no blanks)."]
    problems = []
    bad = np.argwhere(np.abs(K - K.T) > 1e-8)
    if len(bad):
        i, j = bad[0]
        problems.append(f"Not symmetric: item {i + 1} vs {j + 1} is {K[i, j]:g}, but {j + 1} vs {i + 1} "
                        f"is {K[j, i]:g}. Similarity must not depend on the order.")
    off = np.flatnonzero(np.abs(np.diag(K) - 1.0) > 1e-6)
    if len(off):
        problems.append(f"The diagonal must be 1 (each item is identical to itself); item {off[0] + 1} "
                        f"has {K[off[0], off[0]]:g}.")
    if not problems:
        smallest = float(np.linalg.eigvalsh(K).min())
        if smallest < -1e-8:
            problems.append(f"These similarities are impossible together (the matrix is not positive "
                            f"semi-definite; smallest eigenvalue {smallest:.3g}): e.g. if a≈b and b≈c, "
                            "then a cannot be very unlike c.")
    return problems


def check_similarity(K) -> np.ndarray:
    """K as a float64 (n, n) array, or ValueError with the plain-language reasons."""
    problems = kernel_problems(K)
    if problems:
        raise ValueError(" ".join(problems))
    return np.asarray(K, dtype=np.float64)


def kernel_spectrum(K, p=None) -> np.ndarray:
    """Eigenvalues (n,) of diag(√p) K diag(√p), largest first, round-off negatives clipped to 0.

    They sum to 1 and VS = exp(−Σ λ log λ) (eq. 3–4)."""
    K = check_similarity(K)
    p = check_probabilities(p, K.shape[0])
    sqrt_p = np.sqrt(p)
    lam = np.linalg.eigvalsh(sqrt_p[:, None] * K * sqrt_p[None, :])[::-1]
    return np.maximum(lam, 0.0)


def kernel_score(K, p=None, q: float = 1.0) -> float:
    """The Vendi Score of order q of items with similarity K and probabilities p."""
    return score_from_eigenvalues(kernel_spectrum(K, p), q)


def kernel_features(K) -> np.ndarray:
    """F (n, r) with F Fᵀ = K (PSD, unit diagonal), so the rows have unit norm and the cosine engine
    of Algorithm 1 sees exactly K; r = the numerical rank."""
    K = check_similarity(K)
    lam, V = np.linalg.eigh(K)
    keep = lam > K.shape[0] * np.finfo(np.float64).eps * lam.max()
    return V[:, keep] * np.sqrt(lam[keep])


def merge_duplicates(K, p=None) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
    """The reduction of the paper's example: items with similarity 1 are one item holding their mass.

    -> (K' (m, m), p' (m,), groups: the items of each merged one). VS(K', p') = VS(K, p)."""
    K = check_similarity(K)
    p = check_probabilities(p, K.shape[0])
    groups, seen = [], set()
    for i in range(K.shape[0]):
        if i not in seen:
            group = [j for j in range(K.shape[0]) if j not in seen and K[i, j] > 1.0 - 1e-9]
            seen.update(group)
            groups.append(group)
    first = [g[0] for g in groups]
    return K[np.ix_(first, first)], np.array([p[g].sum() for g in groups]), groups


# ----------------------------------------------------------------------------- the toy mixture

@dataclass
class MixtureConfig:
    modes: int = 2  # number of Gaussian modes (k)
    majority: float = 0.9  # share of the points in the first mode; the others split the rest equally
    spread: float = 0.35  # standard deviation of each mode (the modes' centres lie on the unit circle)
    n: int = 500  # number of points (at most MAX_TOY_POINTS)
    seed: int = 0  # the same seed always gives the same points and the same random features


def check_mixture(config: MixtureConfig) -> None:
    if not 2 <= config.modes <= 8:
        raise ValueError(f"the mixture needs 2 to 8 modes; got {config.modes}")
    if not 1.0 / config.modes <= config.majority < 1.0:
        raise ValueError(f"the first mode's share must be between 1/{config.modes} (balanced) and 1; "
                         f"got {config.majority}")
    if not 0.01 <= config.spread <= 2.0:
        raise ValueError(f"the spread must be between 0.01 and 2; got {config.spread}")
    if not config.modes * 2 <= config.n <= MAX_TOY_POINTS:
        raise ValueError(f"the number of points must be between {config.modes * 2} and {MAX_TOY_POINTS}; "
                         f"got {config.n}")


def mode_counts(config: MixtureConfig) -> np.ndarray:
    """(k,) points per mode: the first gets `majority` of n, the others share the rest (≥ 1 each)."""
    first = int(round(config.majority * config.n))
    first = min(max(first, 1), config.n - (config.modes - 1))
    rest = np.full(config.modes - 1, (config.n - first) // (config.modes - 1))
    rest[: (config.n - first) - rest.sum()] += 1
    return np.concatenate([[first], rest]).astype(int)


def toy_mixture(config: MixtureConfig = MixtureConfig()) -> tuple[np.ndarray, np.ndarray]:
    """-> points (n, 2) float64 and their mode (n,) int64; centres on the unit circle."""
    check_mixture(config)
    rng = np.random.default_rng(config.seed)
    angles = 2 * np.pi * np.arange(config.modes) / config.modes
    centres = np.stack([np.cos(angles), np.sin(angles)], 1)  # (k, 2)
    modes = np.repeat(np.arange(config.modes), mode_counts(config))
    points = centres[modes] + config.spread * rng.standard_normal((config.n, 2))
    return points, modes.astype(np.int64)


def random_fourier_features(points, bandwidth: float, n_frequencies: int = 512, seed: int = 0) -> np.ndarray:
    """(n, 2m) features whose dot products approximate the RBF kernel exp(−‖x−y‖² / (2 σ²)), σ = bandwidth.

    z(x) = [cos(Wx), sin(Wx)] / √m with W (m, dim) ~ N(0, 1/σ²): z(x)·z(y) = mean_j cos(w_j·(x − y)),
    an unbiased estimate with error ~ 1/√m, and ‖z(x)‖ = 1 exactly (the kernel's unit diagonal)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or not bandwidth > 0 or n_frequencies < 1:
        raise ValueError("points must be (n, dim), the bandwidth > 0 and at least one frequency")
    W = np.random.default_rng(seed + 7919).standard_normal((n_frequencies, points.shape[1])) / bandwidth
    angles = points @ W.T  # (n, m)
    return np.concatenate([np.cos(angles), np.sin(angles)], 1) / np.sqrt(n_frequencies)


def rbf_kernel(points, bandwidth: float) -> np.ndarray:
    """The exact (n, n) Gaussian kernel, for the error check on small n only."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) > MAX_EXACT_CHECK:
        raise ValueError(f"the exact kernel is only formed for n ≤ {MAX_EXACT_CHECK}")
    sq = (points**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * points @ points.T, 0.0)
    return np.exp(-d2 / (2 * bandwidth**2))


@dataclass
class KernelCheck:
    vs_features: float  # VS with the random-feature kernel
    vs_exact: float  # VS with the exact n×n RBF kernel
    max_entry_error: float  # largest |K_rff − K_exact| over all pairs

    @property
    def relative_error(self) -> float:
        return abs(self.vs_features - self.vs_exact) / self.vs_exact


def rff_check(points, features, bandwidth: float, p=None) -> KernelCheck:
    """How far the random-feature VS is from the exact-kernel VS under p (n ≤ MAX_EXACT_CHECK)."""
    K = rbf_kernel(points, bandwidth)
    p = check_probabilities(p, len(K))
    K_rff = features @ features.T
    return KernelCheck(vendi_score(features, p), kernel_score(K, p), float(np.abs(K_rff - K).max()))


# ----------------------------------------------------------------------------- Algorithm 1, stepped

class Stepper:
    """Algorithm 1 one step at a time, for live display: the engine's own loss, gradient and Adam
    (core.diversity.weights), so after `config.steps` steps p equals `optimise_weights(features, …).p`.

    features (n, d) as for optimise_weights (cosine similarity; `kernel_features(K)` for a kernel)."""

    def __init__(self, features, config: engine.WeightsConfig = engine.WeightsConfig()):
        engine._check_config(config)
        self.config = config
        self.F = engine._prepare(features, config.dtype, "cpu")  # (n, r) numpy, the CPU loop
        self.w = engine.initial_log_weights(self.F, 1)
        self._steps = engine.algorithm_steps(self.F, self.w, [config.gamma], config)
        self.history: list[dict] = []

    @property
    def step_count(self) -> int:
        return len(self.history)

    @property
    def done(self) -> bool:
        return self.step_count >= self.config.steps

    @property
    def p(self) -> np.ndarray:
        """(n,) float64 probabilities of the current iterate."""
        return engine._softmax_rows(self.w.astype(np.float64))[0]

    def step(self, count: int = 1) -> dict | None:
        """Take up to `count` steps (never past config.steps); -> the last step's history row."""
        for _ in range(count):
            if self.done:
                break
            self.history.append(next(self._steps)[0])
        return self.history[-1] if self.history else None


@dataclass
class Snapshot:
    """What the Learn tab shows about the current p of the toy mixture."""

    step: int
    vs: float  # VS of order q under p (random-feature kernel)
    entropy: float  # H(p) in nats
    ess: float  # effective sample size 1/Σp²
    mode_mass: np.ndarray  # (k,) mass per mode under p
    mode_mass_uniform: np.ndarray  # (k,) share of points per mode


def snapshot(features, modes, p, step: int = 0, q: float = 1.0) -> Snapshot:
    """The numbers of one frame: VS_q, entropy, ESS and the mass per mode under p.

    features: (n, d), e.g. a Stepper's rank-reduced F (then the spectrum is r×r: quick per frame)."""
    mass = class_mass(p, modes)
    lam = weighted_spectrum_features(normalise_rows(features), check_probabilities(p, len(modes)))
    return Snapshot(step, score_from_eigenvalues(lam, q), entropy(p), effective_sample_size(p), mass.weighted,
                    mass.uniform)
