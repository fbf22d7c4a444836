"""The start dataset, prepared after the page is served.

`build_demo` only declares components; `StartSet` loads, embeds and weights the start dataset on a
background thread through the workbench (no figures), printing a progress line in the terminal. Each
visitor's page shows that progress and fills in when the set is ready; the caches make a second
start quick.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from pathlib import Path

from divweights.data.storage import disk_full_message
from divweights.jobs import Progress
from divweights.workbench import Workbench
from divweights_ui.common import StartupChoice
from divweights_ui.handlers import clip_if_cached, initial_session, notices_markdown
from divweights_ui.session import Session

WAIT_POLL_S = 0.5  # how often a waiting page is told the progress
LOW_DISK_MB = 100  # below this much free space under the data root, the page says so


class StartSet:
    """The session every visitor starts from, made once per studio process."""

    def __init__(self, wb: Workbench, choice: StartupChoice | None, out=None):
        self.wb, self.choice, self.out = wb, choice, out or sys.stdout
        self.session: Session | None = None if choice else Session()
        self.error: str | None = None
        self.disk_note: str | None = None  # said on every page when the disk is (nearly) full
        self.message, self.fraction = "waiting to start", 0.0
        self._done = threading.Event()
        self._started = time.monotonic()
        self._printed = ""
        if choice is None:
            self._done.set()

    def start(self) -> "StartSet":
        if not self._done.is_set():
            threading.Thread(target=self._prepare, name="start-dataset", daemon=True).start()
        return self

    def _prepare(self) -> None:
        free_mb = shutil.disk_usage(self.wb.data_root if self.wb.data_root.exists() else Path.cwd()).free >> 20
        if free_mb < LOW_DISK_MB:  # the studio still starts; results are computed but not cached
            self.disk_note = (f"The disk holding {self.wb.data_root} is nearly full ({free_mb} MB free): results "
                              "are not cached and uploads may be refused until space is freed.")
            self._say(self.disk_note, force=True)
        try:
            self._say("looking for cached CLIP weights")
            choice = clip_if_cached(self.choice)
            self._say(f"loading {choice.source} ({choice.embedder} features)")
            session = initial_session(self.wb, choice, self._progress)
            self.wb.warm_up_maps(session.features)  # UMAP compiles in the background (about a minute)
            self.session = session
            self._say(f"start dataset ready ({time.monotonic() - self._started:.1f} s)", force=True)
        except Exception as exc:  # the studio still works: the visitor loads a dataset by hand
            full = disk_full_message(exc, self.wb.data_root) if isinstance(exc, OSError) else None
            self.error = full or f"{type(exc).__name__}: {exc}"
            self._say(f"could not prepare the start dataset: {self.error}", force=True)
        finally:
            self.fraction = 1.0
            self._done.set()

    def _progress(self, event: Progress) -> None:
        job = {"embed": "embedding", "weights": "diversity weights"}.get(event.job, event.job)
        self.fraction = event.fraction
        self._say(f"{job}: {event.message}" if event.job != "embed" else event.message)

    def _say(self, message: str, force: bool = False) -> None:
        self.message = message
        stage = message.split(":")[0]
        tenth = int(self.fraction * 10)
        key = f"{stage}{tenth}"
        if force or key != self._printed:  # about ten lines a stage in the terminal
            self._printed = key
            print(f"[divweights] {message}", file=self.out, flush=True)

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def status_markdown(self) -> str:
        if self.error:
            return f"⚠️ The start dataset could not be prepared ({self.error}). Load one on the Dataset tab."
        return f"**Preparing the start dataset** — {self.message} ({self.fraction:.0%}). The page fills in when it is ready."

    def visitor_session(self) -> Session:
        """A session of the visitor's own: the start set's data and weights (read-only, shared), fresh
        dictionaries for everything the visitor changes."""
        base = self.session or Session()
        return Session(ready=base.ready, weights=dict(base.weights), current_key=base.current_key,
                       notices=list(base.notices))


def adopt_start(session: Session, *, start: StartSet):
    """Page load (a generator): while the start set is prepared, stream its progress into the notice;
    then give this visitor their copy, unless they loaded a dataset of their own meanwhile.
    -> (session, notice markdown)."""
    while not start.wait(WAIT_POLL_S):
        yield session, start.status_markdown()
    if session.ready is None and start.session is not None:
        session = start.visitor_session()
    notice = notices_markdown(session) if not start.error else start.status_markdown()
    yield session, "\n\n".join(filter(None, [f"⚠️ {start.disk_note}" if start.disk_note else "", notice]))
