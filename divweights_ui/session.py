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
    dataset: Any = None  # core.datasets.Dataset
    features: np.ndarray | None = None  # (n, d) float32, rows L2-normalised
    embedder: str = ""  # human-readable embedder name, e.g. "pixels" or "ViT-L-14/openai"
    weights: dict[str, Any] = field(default_factory=dict)  # key -> core.weights.WeightsResult
    current_key: str | None = None  # key of the weights the user is looking at

    @property
    def current(self):
        """The WeightsResult currently shown, or None."""
        return self.weights.get(self.current_key) if self.current_key else None

    def current_p(self) -> np.ndarray | None:
        result = self.current
        return None if result is None else result.p
