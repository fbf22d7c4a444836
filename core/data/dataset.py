"""The `Dataset` record: uint8 images (N, H, W, C), optional int64 labels and class names, stable ids,
a human description and a content fingerprint. Built-ins (core.data.datasets) and user data
(core.data.ingest) both produce it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import storage


@dataclass
class Dataset:
    """One dataset in memory. Arrays of built-ins are read-only (shared by an lru_cache)."""

    name: str  # built-in name or the user's path, plus any subset suffix
    images: np.ndarray  # (N, H, W, C) uint8, C in {1, 3}
    labels: np.ndarray | None  # (N,) int64 indices into class_names, or None
    class_names: list[str] | None  # class index -> name
    ids: list[str]  # stable per-example ids (relative file names for folders)
    description: str  # where the data came from, for people
    fingerprint: str  # content hash of images + labels (+ features)
    features: np.ndarray | None = None  # (N, d) precomputed embeddings supplied by the user
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) not ingested

    def __len__(self) -> int:
        return len(self.images)


def make_dataset(name, images, labels, class_names, ids, description, features=None,
                 skipped=None) -> Dataset:
    """Build a Dataset, checking shapes and computing the fingerprint."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be uint8 (N, H, W, 1|3), got {images.dtype} {images.shape}")
    n = len(images)
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    if features is not None and (features.ndim != 2 or len(features) != n):
        raise ValueError(f"features must have shape ({n}, d), got {features.shape}")
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} images")
    fingerprint = storage.fingerprint_arrays(images, labels, features)
    return Dataset(name, images, labels, class_names, list(ids), description, fingerprint,
                   features, list(skipped or []))


def class_names_of(dataset: Dataset, classes) -> list[str]:
    """Display names of class ids (the dataset's names when it has them)."""
    names = dataset.class_names
    return [names[int(c)] if names and int(c) < len(names) else str(int(c)) for c in classes]


def label_names(dataset: Dataset, indices) -> list[str]:
    """The class name of each example in `indices` ("unlabelled" without labels)."""
    if dataset.labels is None:
        return ["unlabelled"] * len(indices)
    return class_names_of(dataset, [dataset.labels[i] for i in indices])
