"""Why an example got its weight: its contribution to the Vendi Score, and its nearest neighbours.

Contribution. With F (n, r) the rank-reduced, L2-normalised features (F Fᵀ = cosine K) and
M = Fᵀ diag(p) F = U diag(λ) Uᵀ (one r×r eigendecomposition, as in each step of Algorithm 1),
S = log VS = −Σ λ log λ has ∂S/∂p_i = Σ_j (−log λ_j − 1)(F U)_ij² (core.diversity.weights).
Moving a fraction ε of all the mass onto example i, p → (1 − ε) p + ε e_i, stays a probability
vector; its derivative is
    dVS/dε = VS · (∂S/∂p_i − Σ_j p_j ∂S/∂p_j),
and dVS/dε / VS is "per cent of VS gained per per cent of mass moved onto i". A unique example has a
positive contribution, a near-duplicate of many others a negative one. Under the diversity weights
themselves the entropy term of Algorithm 1 balances these gains, so the contribution under *uniform*
sampling is the clearer "why"; both are given.

Neighbours come from a blocked matrix product (query rows × all rows), never an n×n matrix at once.
Every example's neighbours cost n²·d products (minutes at n = 60,000), so the export's neighbour
columns stop at EXPORT_NEIGHBOURS_MAX_N; one image's neighbours (n·d) are always found on demand.
What all the "why"s of one p share (both contribution vectors, the typical similarity) is computed
once (`explain_weights`) and handed to `why` and `explanation_columns`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vendi import check_feature_array, check_probabilities, check_row_norms, normalise_rows
from .weights import reduce_rank, vs_and_log_gradient

NEIGHBOUR_BLOCK = 512  # query rows per product: 512 × n float32 similarities (120 MB at n = 60,000)
# every example's neighbours cost n²·d: 10,000 pixel images take ~2 s on 2 cores, 60,000 about a minute
EXPORT_NEIGHBOURS_MAX_N = 10_000


@dataclass
class Contributions:
    """Each example's effect on the Vendi Score under probabilities p."""

    vs: float  # VS under p
    derivative: np.ndarray  # (n,) dVS/dε for moving a fraction ε of the mass onto example i
    percent_per_percent: np.ndarray  # (n,) derivative / VS: % VS change per 1% of mass moved onto i


def reduced_features(features) -> np.ndarray:
    """(n, d) features -> F (n, r), rows of the normalised features in an exact rank-r basis."""
    return reduce_rank(normalise_rows(features))


def log_vs_gradient(F: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
    """S = log VS and ∂S/∂p (n,) for reduced features F (n, r): the engine's own gradient (one r×r
    eigendecomposition, core.diversity.weights.vs_and_log_gradient)."""
    vs, grad = vs_and_log_gradient(F, p[None, :].astype(F.dtype), np.empty_like(F))
    return float(np.log(vs[0])), grad[0]


def contributions(features, p=None, reduced: np.ndarray | None = None) -> Contributions:
    """Per-example contributions to VS under p (None = uniform) for features (n, d), cosine similarity.

    reduced: `reduced_features(features)` when the caller already has it (saves one pass)."""
    F = reduced if reduced is not None else reduced_features(features)
    p = check_probabilities(p, F.shape[0])
    S, grad = log_vs_gradient(F, p)
    relative = grad - float(p @ grad)  # derivative along (1 − ε) p + ε e_i, divided by VS
    vs = float(np.exp(S))
    return Contributions(vs, vs * relative, relative)


def nearest_neighbours(features, k: int = 5, queries=None, block: int = NEIGHBOUR_BLOCK,
                       dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar other examples of each query: (indices (m, k), similarities (m, k)),
    most similar first. queries: example indices (default: every example); dtype of the products
    (float32: half the memory and time; float64 where distances must be exact)."""
    X = check_feature_array(features)  # (n, d); no copy when it is already `dtype` (embeddings are float32)
    X = X if X.dtype == dtype else X.astype(dtype)
    norms = np.linalg.norm(X, axis=1)  # cosine = products / norms: no normalised n×d copy per call
    check_row_norms(bool(np.isfinite(norms).all()), np.flatnonzero(norms == 0))
    n = X.shape[0]
    queries = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64).reshape(-1)
    if queries.size and (queries.min() < 0 or queries.max() >= n):
        raise ValueError(f"example indices must be between 0 and {n - 1}")
    k = min(int(k), n - 1)
    if k < 1:
        raise ValueError("nearest neighbours need at least 2 examples and k ≥ 1")
    found, sims = np.empty((queries.size, k), np.int64), np.empty((queries.size, k), np.float64)
    for start in range(0, queries.size, block):
        rows = queries[start:start + block]
        S = X[rows] @ X.T  # (b, n)
        S /= norms[rows, None]
        S /= norms[None, :]
        S[np.arange(len(rows)), rows] = -np.inf  # an example is not its own neighbour
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(S, top, 1), axis=1, kind="stable")
        found[start:start + block] = np.take_along_axis(top, order, 1)
        sims[start:start + block] = np.take_along_axis(S, found[start:start + block], 1)
    return found, sims


NEIGHBOURHOOD_Z = 2.5  # robust z-score of a nearest-neighbour similarity beyond which a region is crowded/isolated
WEIGHT_NOTED = 1.25  # a weight this many times (or 1/this of) the uniform share is worth a reason


@dataclass
class NeighbourScale:
    """How similar images are to their nearest neighbour, over the dataset (a fixed sample): the scale
    against which one image's neighbourhood is called crowded, isolated or typical."""

    median: float
    spread: float  # 1.4826 × median absolute deviation: a standard deviation that outliers do not inflate

    def z(self, similarity: float) -> float:
        """Robust z-score of a nearest-neighbour similarity (0 where every sampled image has the same)."""
        gap = float(similarity) - self.median
        return gap / self.spread if self.spread > 0 else (0.0 if abs(gap) < 1e-9 else float(np.sign(gap)) * np.inf)

    def region(self, similarity: float) -> str:
        """"crowded", "isolated" or "typical": a gap inside the spread of the dataset's own nearest-neighbour
        similarities is noise, not a reason (pixel features: 0.981 against a median 0.980)."""
        z = self.z(similarity)
        return "crowded" if z > NEIGHBOURHOOD_Z else ("isolated" if z < -NEIGHBOURHOOD_Z else "typical")


@dataclass
class Why:
    """Why one example got its weight (the Inspect tab's caption, `Workbench.why`)."""

    index: int
    relative_weight: float  # n·p_i: 1.0 = the uniform share
    percent_per_percent: float  # % VS change per 1% of mass moved onto it, under the weights
    percent_per_percent_uniform: float  # the same under uniform sampling
    neighbours: np.ndarray  # (k,) indices of its most similar other examples
    similarities: np.ndarray  # (k,) their cosine similarities
    scale: NeighbourScale  # the dataset's nearest-neighbour similarities

    @property
    def region(self) -> str:
        return self.scale.region(float(self.similarities[0]))

    @property
    def text(self) -> str:
        return explain(self)


def explain(why: Why) -> str:
    """One paragraph for people."""
    gain = why.percent_per_percent_uniform
    verb = "raise" if gain >= 0 else "lower"
    closest = ", ".join(f"#{i} ({s:.3f})" for i, s in zip(why.neighbours.tolist(), why.similarities.tolist()))
    return (f"Weight {why.relative_weight:.3g}× the uniform share. With every image equally likely, moving 1% of "
            f"the draws onto image #{why.index} would {verb} the Vendi Score by {abs(gain):.3g}%. {reason(why)} "
            f"(At the current weights the same move changes it by {why.percent_per_percent:+.3g}%: near zero, "
            f"because the weights already balance diversity against spreading the draws.) "
            f"Nearest images (cosine similarity): {closest}.")


def reason(why: Why) -> str:
    """The sentence that says what sets the image apart: its neighbourhood when that is out of the
    ordinary, else its direction in feature space (the spectrum), else nothing ("not distinctive")."""
    nearest, scale = float(why.similarities[0]), why.scale
    against = f"{nearest:.3f}, against a typical {scale.median:.3f} give or take {scale.spread:.3f} over the set"
    region, gain, weight = why.region, why.percent_per_percent_uniform, why.relative_weight
    if region == "crowded":
        then = ("so its look is already covered and it gets less weight" if gain < 0 else
                "yet it still adds variety the set as a whole lacks")
        return f"It sits in a crowded region: its nearest neighbour is unusually similar ({against}), {then}."
    if region == "isolated":
        then = ("it adds a look the others lack, so it gets more weight" if gain >= 0 else
                "yet its look leans on directions the set already covers, so more of it would not add diversity")
        return f"It is isolated: its nearest neighbour is unusually far ({against}): {then}."
    typical = f"Its neighbourhood is typical (nearest neighbour {against})"
    if 1 / WEIGHT_NOTED < weight < WEIGHT_NOTED:
        return f"{typical}, and its weight is close to the uniform share: it is not distinctive."
    if weight >= WEIGHT_NOTED and gain >= 0:
        return (f"{typical}; its extra weight comes from the set as a whole: it leans towards directions of the "
                "features that few images cover (the similarity matrix's spectrum), so more of it adds diversity.")
    if weight <= 1 / WEIGHT_NOTED and gain < 0:
        return (f"{typical}; its low weight comes from the set as a whole: it leans towards directions of the "
                "features that many images cover (the similarity matrix's spectrum), so more of it would lower diversity.")
    return (f"{typical}, and nothing about it alone explains its weight: that comes from how the weights share "
            "the mass among images that look alike.")


@dataclass
class Explained:
    """What every "why" of one p shares: the contributions under p and under uniform sampling, and the
    spread of the dataset's nearest-neighbour similarities (its scale). About 2·n floats: keep it per weights."""

    weighted: Contributions
    uniform: Contributions
    scale: NeighbourScale


def explain_weights(features, p) -> Explained:
    """The shared part of every `why` under p (n,): one rank reduction, two r×r eigendecompositions and
    256 neighbour queries (n·d² work: seconds at n = 60,000, so callers keep the result)."""
    p = check_probabilities(p)
    F = reduced_features(features)
    return Explained(contributions(None, p, F), contributions(None, None, F), neighbour_scale(features))


def why(features, p, index: int, k: int = 6, explained: Explained | None = None) -> Why:
    """The contribution and nearest neighbours of example `index` under p (n,).

    explained: `explain_weights(features, p)` when the caller keeps it (then only the neighbour
    search of this one example, n·d, is done here)."""
    p = check_probabilities(p)
    n = len(p)
    if not 0 <= int(index) < n:
        raise ValueError(f"example index must be between 0 and {n - 1}; got {index}")
    explained = explained if explained is not None else explain_weights(features, p)
    neighbours, sims = nearest_neighbours(features, k, [int(index)])
    return Why(int(index), float(p[index] * n), float(explained.weighted.percent_per_percent[index]),
               float(explained.uniform.percent_per_percent[index]), neighbours[0], sims[0], explained.scale)


def neighbour_scale(features, sample: int = 256, seed: int = 0) -> NeighbourScale:
    """The spread of images' similarity to their nearest neighbour, over a fixed random sample."""
    n = len(features)
    queries = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    nearest = nearest_neighbours(features, 1, queries)[1][:, 0]  # (m,)
    median = float(np.median(nearest))
    return NeighbourScale(median, 1.4826 * float(np.median(np.abs(nearest - median))))


def explanation_columns(features, p, k: int = 3, explained: Explained | None = None,
                        neighbours_max_n: int | None = None) -> dict[str, list[str]]:
    """The CSV export's "why" columns for every example: VS gain per 1% of mass (under the weights and
    under uniform sampling) and, up to `neighbours_max_n` (default EXPORT_NEIGHBOURS_MAX_N) examples, the k nearest neighbours with their
    similarities ("12;507;33"). Beyond it the neighbour columns are left out: they cost n²·d products
    (blocked, so memory stays 512·n floats, but a minute at n = 60,000); `why` finds one image's."""
    if explained is None:
        F = reduced_features(features)
        weighted, uniform = contributions(None, p, F), contributions(None, None, F)
    else:
        weighted, uniform = explained.weighted, explained.uniform
    columns = {
        "vs_gain_pct_per_pct_mass": [f"{v:.6g}" for v in weighted.percent_per_percent],
        "vs_gain_pct_per_pct_mass_uniform": [f"{v:.6g}" for v in uniform.percent_per_percent],
    }
    if len(features) <= (EXPORT_NEIGHBOURS_MAX_N if neighbours_max_n is None else neighbours_max_n):
        neighbours, sims = nearest_neighbours(features, k)
        columns["nearest_neighbours"] = [";".join(map(str, row)) for row in neighbours.tolist()]
        columns["neighbour_similarities"] = [";".join(f"{s:.4f}" for s in row) for row in sims.tolist()]
    return columns
