"""Prepared datasets shared by every session of one studio: a thread-safe LRU bounded by bytes.

Two visitors who load the same spec with the same embedder get the *same* `Prepared` (one copy of
the images and features in memory, not one per session), and when they ask at the same time it is
computed once: the second waits for the first. Arrays are made read-only before they are shared, so
no session can change another's data.

What the cap means (`max_bytes`, the studio's `RequestLimits.max_shared_data_bytes`): the cache keeps
its most recently used entries while their images + features fit; past it the least recently used
entry is dropped *from the cache*. A session still using a dropped entry keeps its reference (nothing
is taken from under it), and while any session holds it a new request for the same key still gets
that copy (a weak reference finds it); once the last session lets go, it is freed. So the memory
held for datasets is at most the cap plus what live sessions are using, and with no sessions left it
is at most the cap. One entry larger than the cap is handed out but never kept.

The workbench only shares what one key always denotes: built-in sets and files under
`<data root>/uploads/<digest>/` (content-addressed); a folder may change between loads and is read
afresh each time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace

import numpy as np

from ..jobs import JobStopped, ShouldStop, stopped
from ..results import Prepared

MAX_SHARED_DATA_BYTES = 1536 * 2**20  # the studio's cap: 1.5 GiB of images + features kept for reuse
WAIT_POLL_S = 0.2  # how often a request waiting for another's computation checks its stop flag


def prepared_bytes(ready: Prepared) -> int:
    """The bytes of a Prepared's arrays (images, labels, features, any user-supplied features)."""
    dataset = ready.dataset
    arrays = (dataset.images, dataset.labels, dataset.features, ready.features)
    return sum(int(a.nbytes) for a in arrays if a is not None)


def freeze(ready: Prepared) -> Prepared:
    """Make the arrays read-only (shared between sessions: nobody may write into them)."""
    for array in (ready.dataset.images, ready.dataset.labels, ready.dataset.features, ready.features):
        if isinstance(array, np.ndarray):
            array.setflags(write=False)
    return ready


class _Held:
    """An entry handed out, found again while any session holds its arrays (weak references: the
    sessions' Prepared are copies, but they share this dataset and these features)."""

    def __init__(self, ready: Prepared):
        self.ready = replace(ready, dataset=None, features=None)  # spec, embedder: small
        self.dataset, self.features = weakref.ref(ready.dataset), weakref.ref(ready.features)

    def get(self) -> Prepared | None:
        dataset, features = self.dataset(), self.features()
        return None if dataset is None or features is None else replace(self.ready, dataset=dataset, features=features)


class PreparedMemo:
    """Key (e.g. (DatasetSpec, embedder)) -> Prepared, shared, at most `max_bytes` kept."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._kept: OrderedDict[Hashable, tuple[Prepared, int]] = OrderedDict()  # LRU order, oldest first
        self._live: dict[Hashable, _Held] = {}  # every entry handed out, while someone holds it
        self._pending: dict[Hashable, threading.Event] = {}  # key -> set when made (or failed)
        self._bytes = 0

    @property
    def held_bytes(self) -> int:
        """Bytes the cache itself keeps alive (≤ max_bytes)."""
        with self._lock:
            return self._bytes

    @property
    def live_bytes(self) -> int:
        """Bytes of every entry still in memory: kept, or held by a session (≥ held_bytes)."""
        with self._lock:
            self._prune_dead()
            return sum(prepared_bytes(ready) for ready in (held.get() for held in self._live.values()) if ready)

    def __len__(self) -> int:
        with self._lock:
            return len(self._kept)

    def get(self, key: Hashable, make: Callable[[], Prepared], should_stop: ShouldStop = None) -> Prepared:
        """The shared Prepared for `key`: kept, still held by a session, or made now (once for all
        concurrent callers of one key). A shared hit comes back with `cache_hit=True`. If the maker
        fails or is stopped, a waiting caller makes it itself; stopping a waiter raises JobStopped."""
        while True:
            with self._lock:
                found = self._find(key)
                if found is not None:
                    return replace(found, cache_hit=True)
                pending = self._pending.get(key)
                if pending is None:
                    pending = self._pending[key] = threading.Event()
                    break  # this caller makes it
            while not pending.wait(WAIT_POLL_S):
                if stopped(should_stop):
                    raise JobStopped("loading stopped")
        try:
            value = freeze(make())
            self._put(key, value)
            return value
        finally:
            with self._lock:
                self._pending.pop(key, None)
            pending.set()

    def _find(self, key: Hashable) -> Prepared | None:
        """(lock held) The kept entry (now most recent) or one a session still holds."""
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key][0]
        held = self._live.get(key)
        value = None if held is None else held.get()
        if held is not None and value is None:
            del self._live[key]
        return value

    def _put(self, key: Hashable, value: Prepared) -> None:
        size = prepared_bytes(value)
        with self._lock:
            self._live[key] = _Held(value)
            if size > self.max_bytes:
                return  # handed out, never kept
            if key in self._kept:
                self._bytes -= self._kept.pop(key)[1]
            self._kept[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._kept.popitem(last=False)
                self._bytes -= dropped
            self._prune_dead()

    def _prune_dead(self) -> None:
        """(lock held) Forget weak references whose Prepared has been freed."""
        for key in [key for key, held in self._live.items() if held.get() is None]:
            del self._live[key]

    def clear(self) -> None:
        """Drop every kept entry (sessions keep theirs)."""
        with self._lock:
            self._kept.clear()
            self._bytes = 0
            self._prune_dead()


def trim_heap() -> bool:
    """Hand memory the process has freed back to the OS (glibc's malloc_trim; elsewhere a no-op -> False).

    Freed arrays of a released session stay in the allocator's arenas (one per worker thread), so RSS
    would not fall after the sessions end without this."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.malloc_trim(0))
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return False
