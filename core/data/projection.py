"""2-D maps of embeddings: UMAP (cached on disk), PCA as the instant fallback, display sampling.

UMAP's first call in a process compiles numba code (~45 s on a laptop CPU); `start_warmup()`
does that on a background thread at app start so the first map the user asks for is quick.
Layouts are cached under `<data_root>/cache/umap/` keyed by the features' fingerprint and the
projection config, so the same dataset + embedder never pays twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .cache import ArrayCache
from .storage import fingerprint_arrays
from ..jobs import JobStopped, OnProgress, ShouldStop, reporter, stopped


@dataclass
class ProjectionConfig:
    method: str = "umap"  # "umap" or "pca"
    n_neighbors: int = 15  # UMAP neighbourhood size: larger = more global structure
    min_dist: float = 0.1  # UMAP: how tightly points may pack
    metric: str = "cosine"  # embeddings are compared by cosine similarity, as in the Vendi Score
    seed: int = 0  # UMAP random state (fixed: the same data gives the same map)
    max_fit: int = 10_000  # UMAP is fitted on at most this many points; the rest are transformed


_WARM = threading.Event()  # process-wide: set once numba has compiled UMAP's kernels
_WARM_LOCK = threading.Lock()
_WARM_THREAD: list[threading.Thread] = []  # at most one warm-up thread per process


TRANSFORM_CHUNK = 5_000  # points placed per UMAP transform call: progress and Stop between chunks


def _umap_fit_transform(features: np.ndarray, config: ProjectionConfig, on_progress: OnProgress = None,
                        should_stop: ShouldStop = None) -> np.ndarray:
    import umap  # late: importing umap pulls in numba (seconds)

    n = features.shape[0]
    report = reporter(on_progress, "map", n)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=max(2, min(config.n_neighbors, n - 1)),
        min_dist=config.min_dist,
        metric=config.metric,
        random_state=config.seed,
        n_jobs=1,  # random_state forces a single thread anyway; say so explicitly
        init="spectral" if n > config.n_neighbors + 2 else "random",
    )
    report(0, f"UMAP: fitting {min(n, config.max_fit):,} points")
    if n <= config.max_fit:
        coords = reducer.fit_transform(features).astype(np.float32)
        report(n, f"UMAP: {n:,} points laid out")
        return coords
    fit_idx = np.random.default_rng(config.seed).choice(n, size=config.max_fit, replace=False)
    coords = np.empty((n, 2), dtype=np.float32)
    coords[fit_idx] = reducer.fit_transform(features[fit_idx])
    rest = np.setdiff1d(np.arange(n), fit_idx)
    for start in range(0, rest.size, TRANSFORM_CHUNK):  # the rest placed on the fitted map, chunk by chunk
        if stopped(should_stop):
            raise JobStopped("map layout stopped")
        done = config.max_fit + start
        report(done, f"UMAP: placing the other points, {done:,} of {n:,} laid out")
        chunk = rest[start:start + TRANSFORM_CHUNK]
        coords[chunk] = reducer.transform(features[chunk])
    report(n, f"UMAP: {n:,} points laid out")
    return coords


def warmup(features: np.ndarray | None = None, cache_dir: str | Path | None = None) -> None:
    """Compile UMAP's numba code (blocking); sets `is_warm()`.

    With features, the real layout is computed and cached (so the first map is a cache hit);
    otherwise a tiny random problem is used.
    """
    if features is not None and len(features) >= 4:
        project(features, ProjectionConfig(), cache_dir)
    else:
        rng = np.random.default_rng(0)
        _umap_fit_transform(rng.normal(size=(40, 8)).astype(np.float32), ProjectionConfig(n_neighbors=5))
    _WARM.set()


def start_warmup(features: np.ndarray | None = None, cache_dir: str | Path | None = None) -> threading.Thread:
    """Run `warmup(features, cache_dir)` on a daemon thread; at most one warm-up runs at a time."""
    with _WARM_LOCK:
        if _WARM_THREAD and (_WARM_THREAD[0].is_alive() or (is_warm() and features is None)):
            return _WARM_THREAD[0]
        thread = threading.Thread(target=_warmup_quietly, args=(features, cache_dir), name="umap-warmup",
                                  daemon=True)
        thread.start()
        _WARM_THREAD[:] = [thread]
        return thread


def _warmup_quietly(features, cache_dir) -> None:
    try:
        warmup(features, cache_dir)
    except Exception:  # a failed warm-up only means the first real call compiles instead
        pass


def is_warm() -> bool:
    """True once UMAP has run at least once in this process (no compile wait left)."""
    return _WARM.is_set()


PCA_FIT_ROWS = 10_000  # PCA's axes come from at most this many rows (a fixed sample); every row is projected
GRAM_MAX_DIM = 4096  # up to this many feature dimensions the axes come from the d×d Gram matrix (eigh), else SVD


def pca_2d(features: np.ndarray, max_fit: int = PCA_FIT_ROWS, seed: int = 0) -> np.ndarray:
    """(n, d) -> (n, 2) float32: the two leading principal components (quick, deterministic).

    The axes are those of at most `max_fit` rows (a fixed random sample; the mean is every row's) and
    come from eigh of their d×d Gram matrix: LAPACK's SVD of a tall 60,000×784 array took minutes on 2
    cores, this takes about a second. A sample of 10,000 gives axes within a degree or so of the full
    data's on real embeddings, which a map cannot show."""
    X = np.asarray(features)
    X = X if X.dtype in (np.float32, np.float64) else X.astype(np.float64)
    n, d = X.shape
    if n < 2:
        return np.zeros((n, 2), dtype=np.float32)
    mean = X.mean(axis=0, dtype=np.float64)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=max_fit, replace=False)) if n > max_fit else None
    centred = (X if rows is None else X[rows]).astype(np.float64) - mean  # (m, d), m ≤ max_fit
    if d <= GRAM_MAX_DIM:
        lam, V = np.linalg.eigh(centred.T @ centred)  # ascending
        components = V[:, ::-1][:, :min(2, d)]  # (d, <=2)
    else:
        components = np.linalg.svd(centred, full_matrices=False)[2][:2].T
    coords = (X @ components.astype(X.dtype)).astype(np.float64) - mean @ components  # (n, <=2), no n×d copy
    signs = np.sign(coords[np.argmax(np.abs(coords), axis=0), range(coords.shape[1])])
    coords = coords * np.where(signs == 0, 1.0, signs)  # fix the eigenvectors' sign ambiguity
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords.astype(np.float32)


def cache_key(features: np.ndarray, config: ProjectionConfig) -> str:
    """Features fingerprint + hash of the config: the file name of a cached layout."""
    config_hash = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:8]
    return f"{fingerprint_arrays(features)}-{config.method}-{config_hash}"


def has_cached(features: np.ndarray, config: ProjectionConfig, cache_dir: str | Path | None) -> bool:
    """Whether `project(features, config, cache_dir)` would be a cache hit (PCA counts as instant).

    A cheap check (the entry's files are there, whole); `project` still verifies the checksum."""
    if config.method == "pca":
        return True
    features = np.asarray(features, dtype=np.float32)
    return bool(cache_dir) and ArrayCache(cache_dir, ".npy").exists(cache_key(features, config))


def project(
    features: np.ndarray, config: ProjectionConfig | None = None, cache_dir: str | Path | None = None,
    on_progress: OnProgress = None, should_stop: ShouldStop = None,
) -> tuple[np.ndarray, bool]:
    """2-D layout of features (n, d): returns (coords (n, 2) float32, cache_hit). UMAP reports
    Progress("map", points laid out) and stops (JobStopped) between transform chunks.

    With cache_dir (e.g. `<data_root>/cache/umap`), layouts are read from / written to
    `<key>.npy` + `<key>.json` (`core.data.cache.ArrayCache`; a damaged entry is recomputed).
    PCA is never cached (it is instant).
    """
    config = config or ProjectionConfig()
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be a non-empty (n, d) array, got shape {features.shape}")
    if config.method == "pca" or features.shape[0] < 4:
        return pca_2d(features), False
    if config.method != "umap":
        raise ValueError(f"unknown projection method {config.method!r} (use 'umap' or 'pca')")
    cache, key = ArrayCache(cache_dir, ".npy") if cache_dir else None, cache_key(features, config)
    entry = cache.load(key) if cache is not None else None
    coords = None if entry is None else entry.get("coords")
    if coords is not None and coords.shape == (features.shape[0], 2):
        return coords.astype(np.float32), True
    coords = _umap_fit_transform(features, config, on_progress, should_stop)
    _WARM.set()
    if cache is not None:
        cache.store(key, {"coords": coords}, {"config": asdict(config), "n": len(coords)})
    return coords, False


def display_sample(
    n: int, max_points: int, p: np.ndarray | None = None, keep_extremes: int = 50, seed: int = 0
) -> np.ndarray:
    """Indices (sorted) of at most max_points of n points to draw.

    All points when n <= max_points. Otherwise a fixed random sample that always contains the
    `keep_extremes` highest- and lowest-weighted points (the ones people look for on the map).
    """
    if n <= max_points:
        return np.arange(n)
    keep = np.array([], dtype=np.int64)
    keep_extremes = min(keep_extremes, max_points // 4)  # extremes never crowd out the sample
    if p is not None and keep_extremes > 0:
        order = np.argsort(p, kind="stable")
        keep = np.unique(np.concatenate([order[:keep_extremes], order[-keep_extremes:]]))
    rest = np.setdiff1d(np.arange(n), keep)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(rest, size=max(0, max_points - keep.size), replace=False)
    return np.sort(np.concatenate([keep, chosen]).astype(np.int64))
