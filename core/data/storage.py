"""Files under the data root: path confinement, atomic writes, fingerprints.

Every file divweights writes lives under one data root. Paths that come from a user are
resolved with `resolve_under`, which refuses anything that would land outside it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

DATA_DIR_ENV = "DIVWEIGHTS_DATA_DIR"


def default_data_root() -> Path:
    """$DIVWEIGHTS_DATA_DIR; else in a checkout `data/` next to the project's top level, and for an
    installed package the user's data folder ($XDG_DATA_HOME/divweights, ~/.local/share/divweights)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    if checkout_root() is not None:
        return checkout_root() / "data"
    user_data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return (Path(user_data) / "divweights").expanduser().resolve()


def checkout_root() -> Path | None:
    """The project folder when this package runs from a checkout (core/ beside app.py), else None."""
    top = Path(__file__).resolve().parents[2]
    return top if (top / "app.py").is_file() and (top / "core" / "__init__.py").is_file() else None


def resolve_under(root: str | os.PathLike, user_path: str | os.PathLike) -> Path:
    """Resolve `user_path` (relative to `root`, or absolute) and refuse it unless inside `root`.

    Symlinks are resolved first, so a link pointing outside the root is refused too.
    """
    root_path = Path(root).expanduser().resolve()
    candidate = Path(user_path).expanduser()
    if not candidate.is_absolute():
        candidate = root_path / candidate
    resolved = candidate.resolve()
    if resolved != root_path and root_path not in resolved.parents:
        raise ValueError(f"path {str(user_path)!r} is outside the data root {root_path}")
    return resolved


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write via a temp file in the same folder, fsync, then os.replace: readers never see
    a half-written file and an existing file survives a crash mid-write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buffer.getvalue())


def fingerprint_arrays(*arrays: np.ndarray | None, extra: str = "") -> str:
    """sha256 over dtype, shape and bytes of each array (None allowed): a content fingerprint."""
    digest = hashlib.sha256()
    for array in arrays:
        if array is None:
            digest.update(b"none;")
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.tobytes())
    digest.update(extra.encode())
    return digest.hexdigest()[:16]


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (uploads can be hundreds of MB), 12 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def atomic_copy(source: str | os.PathLike, target: str | os.PathLike, digest: str) -> Path:
    """Copy `source` to `target` through a temp file in the target's folder, checking the copy's
    file_digest against `digest` before it takes the target's name: a copy cut short (a full disk)
    never stands as the file, and leaves no temp file behind."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if file_digest(tmp) != digest:
            raise OSError(f"the copy of {Path(source).name} does not match the original")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, file too large
UNWRITABLE_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)  # read-only disk, no permission


def disk_full_message(exc: OSError, where) -> str | None:
    """A sentence for a full (or read-only) disk, None for other errors."""
    if getattr(exc, "errno", None) in FULL_ERRNOS:
        return f"The disk holding {where} is full: free some space and try again; nothing was changed."
    if getattr(exc, "errno", None) in UNWRITABLE_ERRNOS:
        return f"{where} cannot be written ({exc.strerror}); nothing was changed."
    return None


def disk_error_message(exc: OSError, where) -> str:
    """One sentence for any OSError of reading or writing files (a full disk, a read-only one, others)."""
    known = disk_full_message(exc, where)
    if known:
        return known
    reason = exc.strerror or str(exc).strip() or type(exc).__name__
    name = f" ({Path(exc.filename).name})" if getattr(exc, "filename", None) else ""
    return f"{where} could not be read or written{name}: {reason}."


def load_npy(path: str | os.PathLike, max_bytes: int = 8 << 30) -> np.ndarray:
    """Load a .npy file without unpickling; the declared shape is checked before allocating."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        header = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{path.name} is not a plain numeric .npy array ({exc})") from None
    declared = int(np.prod(header.shape, dtype=np.int64)) * header.dtype.itemsize
    if declared > max_bytes:
        raise ValueError(f"{path.name} declares {declared / 2**30:.1f} GiB (shape {header.shape}); the limit is {max_bytes / 2**30:.1f} GiB")
    if declared > path.stat().st_size:
        raise ValueError(f"{path.name} is truncated: its header declares shape {header.shape}")
    return np.array(header)
