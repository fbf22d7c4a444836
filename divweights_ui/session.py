"""Per-session state of the studio (kept in one `gr.State` per browser session).

Nothing mutable here is shared between visitors: every session gets its own `Session`. The dataset,
its features and how it was made are one `core.workbench.Prepared`, read-only and shared with every
session that loaded the same spec (the workbench's cache, core.data.memo).

What a session holds, measured for 2,000 Fashion-MNIST images with pixel features (6.3 MB of
features, 1.6 MB of images, both shared), besides them: its weights (p, log w and the per-step
history: ~40 KB each), the map layout, ~1.3 MB of base64 hover thumbnails, and what gradio keeps for
its page (every output last shown, the map figure with its thumbnails ~1.5 MB). All of it goes when the
session expires (`release_expired`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from divweights.data.memo import trim_heap
from divweights.diversity.weights import WeightsResult
from divweights.results import MapLayout, Prepared


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
        """Drop the session's data (the shared dataset stays while other sessions or the cache use it)."""
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


def release_expired(session: Session, *, demo) -> None:
    """gradio's delete_callback of the session state: called `time_to_live` after the session's last
    action, or an hour after its page closed. Releases the session's data and forgets what gradio
    keeps for that page (its SessionState: every output last shown, e.g. the map figure); gradio
    itself keeps those until 10,000 later sessions have pushed them out. Then hands the freed memory
    back to the OS. A page that comes back later starts a fresh session."""
    session.release()
    holder = getattr(demo, "state_holder", None)  # gradio's StateHolder: session hash -> SessionState
    sessions = getattr(holder, "session_data", None)
    if sessions is not None:
        with holder.lock:
            for session_hash, page in list(sessions.items()):
                if any(value is session for value in page.state_data.values()):
                    sessions.pop(session_hash, None)
                    holder.time_last_used.pop(session_hash, None)
    trim_heap()
