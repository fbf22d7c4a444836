"""Disk caches of numpy arrays with one integrity rule (embeddings, weights, map layouts, the IS probe).

An entry is two files in the cache folder: the payload `<key>.npy` (one array) or `<key>.npz`
(several), and the sidecar `<key>.json` holding the caller's metadata plus an "entry" record:
the sha256 of the payload bytes, their length and the array names. Both files are written
atomically, payload first, so a crash or a concurrent reader sees an old sidecar at worst, whose
checksum no longer matches. `load` verifies the checksum and treats any missing, truncated,
corrupted or unreadable entry as a miss (None): the caller recomputes and saves it again.
Arrays are never pickled, in either direction (allow_pickle=False).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .storage import atomic_write_bytes, atomic_write_json

ENTRY = "entry"  # the sidecar's integrity record: {"sha256", "bytes", "arrays"}
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")  # a plain file name: no folders, no leading dot
_RECORD = {"sha256", "bytes", "arrays"}
_UNREADABLE = (OSError, ValueError, LookupError, TypeError, EOFError, zipfile.BadZipFile)


class ArrayCache:
    """A folder of cache entries, each a dict of named arrays plus JSON metadata.

    suffix ".npy" stores exactly one array per entry; ".npz" any number.
    """

    def __init__(self, folder: str | os.PathLike, suffix: str = ".npz"):
        if suffix not in (".npy", ".npz"):
            raise ValueError(f"suffix must be .npy or .npz, got {suffix!r}")
        self.folder, self.suffix = Path(folder), suffix

    def payload_path(self, key: str) -> Path:
        return self._path(key, self.suffix)

    def sidecar_path(self, key: str) -> Path:
        return self._path(key, ".json")

    def save(self, key: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> Path:
        """Write the entry (payload, then sidecar, each atomically); returns the payload's path."""
        meta = meta or {}
        if ENTRY in meta:
            raise ValueError(f"meta key {ENTRY!r} is reserved for the cache's own record")
        payload = _serialise(arrays, self.suffix)
        record = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload), "arrays": list(arrays)}
        path = atomic_write_bytes(self.payload_path(key), payload)
        atomic_write_json(self.sidecar_path(key), meta | {ENTRY: record})
        return path

    def store(self, key: str, arrays: dict[str, np.ndarray], meta: dict | None = None) -> bool:
        """`save`, for callers whose result stands without the cache: a write the disk refuses (full,
        read-only) warns and returns False instead of failing the computation it would have cached."""
        try:
            self.save(key, arrays, meta)
            return True
        except OSError as exc:
            warnings.warn(f"not cached ({self.folder}): {exc.strerror or exc}", RuntimeWarning, stacklevel=2)
            return False

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The entry's arrays, or None when it is missing, damaged or unreadable (a miss)."""
        path, sidecar = self.payload_path(key), self._sidecar(key)
        if sidecar is None:
            return None
        try:
            payload = path.read_bytes()
            if hashlib.sha256(payload).hexdigest() != sidecar[ENTRY]["sha256"]:
                return None
            arrays = _deserialise(payload, self.suffix, sidecar[ENTRY]["arrays"])
        except _UNREADABLE:
            return None
        return arrays if list(arrays) == sidecar[ENTRY]["arrays"] else None

    def meta(self, key: str) -> dict | None:
        """The metadata saved with the entry (without the integrity record), or None. Unverified:
        a description of the entry, not a substitute for `load`."""
        sidecar = self._sidecar(key)
        return None if sidecar is None else {k: v for k, v in sidecar.items() if k != ENTRY}

    def exists(self, key: str) -> bool:
        """A cheap hint that `load(key)` will hit: both files present, payload of the recorded
        length. Only `load` reads the payload and verifies its checksum."""
        path, sidecar = self.payload_path(key), self._sidecar(key)
        try:
            return sidecar is not None and path.stat().st_size == sidecar[ENTRY]["bytes"]
        except OSError:
            return False

    def _sidecar(self, key: str) -> dict | None:
        """The parsed sidecar when it has an integrity record, else None."""
        path = self.sidecar_path(key)  # a bad key raises here, it is no miss
        try:
            sidecar = json.loads(path.read_text())
        except (OSError, ValueError):  # missing, unreadable, not UTF-8 or not JSON
            return None
        ok = isinstance(sidecar, dict) and isinstance(sidecar.get(ENTRY), dict) and _RECORD <= set(sidecar[ENTRY])
        return sidecar if ok else None

    def _path(self, key: str, suffix: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"cache key {key!r} is not a plain file name")
        return self.folder / f"{key}{suffix}"


def _serialise(arrays: dict[str, np.ndarray], suffix: str) -> bytes:
    if suffix == ".npy" and len(arrays) != 1:
        raise ValueError(f"a .npy entry holds exactly one array, got {len(arrays)}")
    buffer = io.BytesIO()  # object arrays are refused here: numpy raises ValueError without pickle
    if suffix == ".npy":
        np.save(buffer, next(iter(arrays.values())), allow_pickle=False)
    else:
        np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def _deserialise(payload: bytes, suffix: str, names: list[str]) -> dict[str, np.ndarray]:
    if suffix == ".npy":
        return {names[0]: np.load(io.BytesIO(payload), allow_pickle=False)}
    with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
