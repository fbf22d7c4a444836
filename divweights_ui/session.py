"""Per-session state of the studio (kept in one `gr.State` per browser session).

Nothing here is shared between visitors: every session gets its own `Session`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class DatasetSpec:
    """Enough to rebuild the dataset anywhere (e.g. in a training subprocess)."""

    source: str  # built-in name ("digits", "mnist", "fashion-mnist") or a path under the data root
    classes: tuple[int, ...] | None = None  # class-pair subset, e.g. (0, 1)
    per_class: int | None = None  # examples per class for the subset
    seed: int = 0  # subset seed


@dataclass
class Session:
    spec: DatasetSpec | None = None
    dataset: Any = None  # core.data.datasets.Dataset
    features: np.ndarray | None = None  # (n, d) float32, rows L2-normalised
    embedder: str = ""  # human-readable embedder name, e.g. "pixels" or "ViT-L-14/openai"
    weights: dict[str, Any] = field(default_factory=dict)  # key -> core.diversity.weights.WeightsResult
    current_key: str | None = None  # key of the weights the user is looking at
    embed_cache_hit: bool = False  # whether the features came from the embedding cache
    coords: np.ndarray | None = None  # (m, 2) float32 map layout; row j is example map_indices[j]
    coords_method: str = ""  # "umap" or "pca"
    map_indices: np.ndarray | None = None  # (m,) examples drawn on the map (a fixed sample if n is large)
    thumbs_b64: dict[int, str] = field(default_factory=dict)  # index -> small base64 PNG for map hovers
    notices: list[str] = field(default_factory=list)  # things the user should know (e.g. pixel fallback)

    def replace_data(self, spec, dataset, features, embedder: str, cache_hit: bool) -> None:
        """A new dataset/embedding: everything derived from the old one is dropped."""
        self.spec, self.dataset, self.features = spec, dataset, features
        self.embedder, self.embed_cache_hit = embedder, cache_hit
        self.weights, self.current_key = {}, None
        self.coords, self.coords_method, self.map_indices = None, "", None
        self.thumbs_b64 = {}

    @property
    def current(self):
        """The WeightsResult currently shown, or None."""
        return self.weights.get(self.current_key) if self.current_key else None

    def current_p(self) -> np.ndarray | None:
        result = self.current
        return None if result is None else result.p
