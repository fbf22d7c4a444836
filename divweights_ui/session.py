"""Per-session state of the studio (kept in one `gr.State` per browser session).

Nothing here is shared between visitors: every session gets its own `Session`. The dataset, its
features and how it was made are one `core.workbench.Prepared`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.diversity.weights import WeightsResult
from core.results import MapLayout, Prepared


@dataclass
class Session:
    ready: Prepared | None = None  # the loaded, embedded dataset
    weights: dict[str, WeightsResult] = field(default_factory=dict)  # key -> result, for this dataset
    current_key: str | None = None  # key of the weights the user is looking at
    layout: MapLayout | None = None  # the map's layout (reused when only the weights change)
    thumbs_b64: dict[int, str] = field(default_factory=dict)  # index -> small base64 PNG for map hovers
    notices: list[str] = field(default_factory=list)  # things the user should know (e.g. skipped files)
    running: dict | None = None  # the weights job in progress: {"what", "gamma", "step", "steps"}
    explained: dict = field(default_factory=dict)  # weights key -> contribution.Explained (the current one only)

    def replace_data(self, ready: Prepared | None) -> None:
        """A new dataset/embedding: everything derived from the old one is dropped."""
        self.ready, self.weights, self.current_key = ready, {}, None
        self.layout, self.thumbs_b64, self.explained = None, {}, {}

    def release(self) -> None:
        """Drop the session's data (gradio calls this when the session expires or its page is gone)."""
        self.replace_data(None)
        self.notices = []

    @property
    def spec(self):
        return None if self.ready is None else self.ready.spec

    @property
    def dataset(self):
        return None if self.ready is None else self.ready.dataset

    @property
    def features(self) -> np.ndarray | None:
        return None if self.ready is None else self.ready.features

    @property
    def embedder(self) -> str:
        """Human-readable embedder, e.g. "pixels" or "ViT-L-14/openai"."""
        return "" if self.ready is None else self.ready.embedder.describe()

    @property
    def current(self) -> WeightsResult | None:
        """The weights currently shown, or None."""
        return self.weights.get(self.current_key) if self.current_key else None

    def current_p(self) -> np.ndarray | None:
        result = self.current
        return None if result is None else result.p
