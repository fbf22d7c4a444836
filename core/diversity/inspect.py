"""What a set of diversity weights does to a dataset: pure numpy summaries for people.

All functions take `p`, an (n,) probability vector (non-negative, sums to 1), as returned in
`core.diversity.weights.WeightsResult.p`. "Relative weight" below means n * p_i: 1.0 is what every example
gets under uniform sampling, 2.0 means "drawn twice as often as uniform".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .vendi import check_probabilities


def top_bottom_indices(p: np.ndarray, k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the k highest-weighted (descending) and k lowest-weighted (ascending) examples.

    Ties are broken by index (stable sort), so the result is deterministic.
    """
    p = check_probabilities(p)
    k = max(0, min(int(k), p.size))
    order = np.argsort(-p, kind="stable")  # highest first, ties by index
    top = order[:k]
    bottom = np.argsort(p, kind="stable")[:k]  # lowest first, ties by index
    return top, bottom


def relative_weights(p: np.ndarray) -> np.ndarray:
    """n * p: 1.0 = uniform share."""
    p = check_probabilities(p)
    return p * p.size


def weight_histogram(p: np.ndarray, bins: int = 40, log2: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Histogram of relative weights n*p: (counts (bins,), edges (bins+1,)). Counts sum to n.

    log2=True bins log2(n*p) instead (0 = uniform, 1 = twice, -1 = half): diversity weights
    span orders of magnitude, so a linear axis shows one spike. Weights below 2^-30 share the
    lowest bin.
    """
    rel = relative_weights(p)
    if log2:
        rel = np.log2(np.maximum(rel, 2.0**-30))
    low, high = float(rel.min()), float(rel.max())
    if high - low < 1e-12:  # all equal (e.g. uniform): one visible bar around the value
        low, high = low - 0.5, high + 0.5
    return np.histogram(rel, bins=bins, range=(low, high))


def histogram_members(p: np.ndarray, edges: np.ndarray, log2: bool = True) -> list[np.ndarray]:
    """The examples in each bin of `weight_histogram(p, log2=log2)` (edges from it): (bins,) index arrays."""
    rel = relative_weights(p)
    values = np.log2(np.maximum(rel, 2.0**-30)) if log2 else rel
    bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)  # last edge inclusive
    return [np.flatnonzero(bins == b) for b in range(len(edges) - 1)]


def index_ranges(indices) -> str:
    """Sorted indices as text the studio reads back: [3, 17, 200, 201, 202] -> '3, 17, 200-202'."""
    parts, indices = [], sorted(int(i) for i in indices)
    start = prev = None
    for i in indices + [None]:
        if start is not None and (i is None or i != prev + 1):
            parts.append(str(start) if start == prev else f"{start}-{prev}")
            start = None
        if i is not None and start is None:
            start = i
        prev = i
    return ", ".join(parts)


def effective_sample_size(p: np.ndarray) -> float:
    """Kish's ESS = 1 / sum p_i^2: how many equally-weighted examples the weights are 'worth'.

    n for uniform weights, 1 when all mass sits on one example.
    """
    p = check_probabilities(p)
    return float(1.0 / np.sum(p * p))


def entropy(p: np.ndarray) -> float:
    """Shannon entropy of p in nats: log n for uniform weights, 0 when one example takes all the mass."""
    p = check_probabilities(p)
    return float(-(p * np.log(np.maximum(p, 1e-300))).sum())


def max_min_ratio(p: np.ndarray) -> float:
    """Largest weight over smallest weight (inf if some example has zero weight)."""
    p = check_probabilities(p)
    smallest = float(p.min())
    return float("inf") if smallest <= 0 else float(p.max() / smallest)


def expected_distinct(p: np.ndarray, batch_size: int) -> float:
    """Expected number of distinct examples in a batch of B draws with replacement by p.

    Example i appears at least once with probability 1 - (1 - p_i)^B; sum over i.
    """
    p = check_probabilities(p)
    if batch_size < 1:
        raise ValueError("batch size must be at least 1")
    # log1p keeps (1 - p)^B accurate for tiny p and large B.
    return float(np.sum(-np.expm1(batch_size * np.log1p(-np.minimum(p, 1.0 - 1e-300)))))


def expected_repeats(p: np.ndarray, batch_size: int) -> float:
    """Expected number of draws in a batch of B that repeat an example already in the batch."""
    return float(batch_size - expected_distinct(p, batch_size))


@dataclass
class ClassMass:
    """Probability mass per class, under uniform sampling and under the weights."""

    classes: np.ndarray  # (c,) class ids present in the labels, ascending
    uniform: np.ndarray  # (c,) share of examples per class (uniform p)
    weighted: np.ndarray  # (c,) sum of p over each class


def class_mass(p: np.ndarray, labels: np.ndarray) -> ClassMass:
    """Mass per class under uniform vs the given weights; both rows sum to 1."""
    p = check_probabilities(p)
    labels = np.asarray(labels)
    if labels.shape != p.shape:
        raise ValueError(f"labels have shape {labels.shape} but weights have {p.shape}")
    classes, inverse = np.unique(labels, return_inverse=True)
    uniform = np.bincount(inverse, minlength=classes.size) / p.size
    weighted = np.bincount(inverse, weights=p, minlength=classes.size)
    return ClassMass(classes=classes, uniform=uniform, weighted=weighted)


def weight_summary(p: np.ndarray, batch_size: int = 64) -> dict[str, float]:
    """The numbers the Inspect tab shows, in one dict."""
    p = check_probabilities(p)
    return {
        "n": int(p.size),
        "ess": effective_sample_size(p),
        "ess_fraction": effective_sample_size(p) / p.size,
        "max_min_ratio": max_min_ratio(p),
        "max_relative": float(p.max() * p.size),
        "min_relative": float(p.min() * p.size),
        "batch_size": int(batch_size),
        "expected_repeats": expected_repeats(p, batch_size),
        "expected_repeats_uniform": expected_repeats(np.full(p.size, 1.0 / p.size), batch_size),
        "entropy": entropy(p),
        "entropy_uniform": float(np.log(p.size)),
    }


@dataclass
class BrowsePage:
    """One page of the whole dataset sorted by weight (the Inspect tab's "Browse by weight")."""

    indices: np.ndarray  # (m,) the examples of this page, in order
    relative: np.ndarray  # (m,) their n·p (1.0 = uniform share)
    page: int  # 1-based page number shown
    pages: int  # number of pages (at least 1)
    total: int  # examples that pass the filter


def browse_page(p: np.ndarray, page: int = 1, descending: bool = True, labels: np.ndarray | None = None,
                label: int | None = None, per_page: int = 48) -> BrowsePage:
    """Page `page` (1-based, clipped to the last) of every example sorted by weight, ties by index;
    label: only the examples of that class (needs labels)."""
    p = check_probabilities(p)
    if per_page < 1:
        raise ValueError("a page needs at least one example")
    candidates = np.arange(p.size)
    if label is not None:
        if labels is None:
            raise ValueError("this dataset has no labels, so it cannot be filtered by class")
        candidates = np.flatnonzero(np.asarray(labels) == int(label))
        if candidates.size == 0:
            raise ValueError(f"no example has class {label}")
    order = candidates[np.argsort(-p[candidates] if descending else p[candidates], kind="stable")]
    pages = max(1, -(-order.size // per_page))
    page = min(max(int(page), 1), pages)
    shown = order[(page - 1) * per_page: page * per_page]
    return BrowsePage(shown, p[shown] * p.size, page, pages, int(order.size))
