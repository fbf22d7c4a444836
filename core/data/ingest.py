"""Safe ingest of user data: image folders, zip uploads, .npy/.npz arrays.

Rules (each has a test in tests/core/data/test_ingest.py):
- a path from the studio resolves inside the data root (`storage.resolve_under`); the CLI's are the user's own;
- a zip with an entry that is absolute, has a drive letter or a `..` part, is a symlink or is
  encrypted is rejected whole, naming the entry, before anything is written; caps on entry
  count, total declared size and compression ratio, declared compressed sizes within the
  file, and the uploads folder's quota are checked before extracting; while extracting the
  bytes really written are counted (an entry longer than it declares is refused) against the
  size cap, the ratio cap times the real archive size and the quota; a refused archive leaves
  nothing behind; nested archives are never expanded;
- images are identified by content against an allow-list (PNG, JPEG, WebP, BMP, GIF first
  frame, TIFF) with Pillow's decompression-bomb protection on; empty, truncated and
  non-image files are skipped and listed with a reason; CMYK, 16-bit, palette, alpha and
  EXIF-rotated images are normalised; files are read in sorted order, so re-running gives
  the same dataset;
- headers are read first: the pixels of all images together are capped before any is decoded,
  and each image is decoded reduced towards the size the dataset stores (`decode_image`), never
  all at full size at once;
- arrays load with `allow_pickle=False` after their declared shape and size are checked.
"""

from __future__ import annotations

import copy
import lzma
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from . import storage
from .dataset import make_dataset
from .safe_read import (IngestLimits, Rejected, archive_bytes, check_total_pixels, check_zip, decode_image,
                                 common_size, image_size, read_npy, read_npz, stack_images, stored_size,
                                 to_uint8_images)
from .safe_read import read_image  # noqa: F401  (re-exported: ingest.read_image)

# The command line is the machine's own user: no cap on the pixels of one ingest or on the uploads folder
# (images are still decoded one at a time, reduced); the archive checks (slip, bombs, ratio) all stay.
COMMAND_LINE_LIMITS = IngestLimits(max_total_pixels=1 << 50, max_uploads_bytes=1 << 60)
FEATURE_FILES = ("features.npy", "embeddings.npy", "features.npz")
IMAGE_KEYS, LABEL_KEYS = ("images", "x", "X", "arr_0"), ("labels", "y", "Y", "arr_1")
FEATURE_KEYS = ("features", "embeddings")
BAD_STREAM = (zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, NotImplementedError)  # a broken archive


# ---------------------------------------------------------------------------- entry point


def load_path(source: str, data_root: Path, subfolders_as_classes: bool = False,
              limits: IngestLimits | None = None, confine: bool = True):
    """A folder, .zip or .npy/.npz -> core.data.dataset.Dataset.

    confine=True (what comes through the web page): `source` must resolve under `data_root`, and
    symlinks leaving it are skipped. confine=False (the command line, the machine's own user): any
    path, relative ones against the current directory; symlinks leaving the named folder are skipped.
    Archives are extracted under <data_root>/uploads/ either way, with the same checks.
    """
    limits = limits or IngestLimits()
    path = storage.resolve_under(data_root, source) if confine else Path(source).expanduser().resolve()
    if not path.exists():
        where = f"under the data root {data_root}" if confine else "on this machine"
        raise FileNotFoundError(f"{source!r} is not a built-in (digits, mnist, fashion-mnist) "
                                f"nor a file or folder {where}")
    suffix = path.suffix.lower()
    if path.is_dir():
        return load_folder(path, data_root if confine else path, subfolders_as_classes, limits, name=str(source))
    if suffix == ".zip":
        folder = zip_folder(path, data_root)
        fresh = not folder.is_dir()
        extract_zip(path, folder, limits)
        try:
            return load_folder(folder, data_root if confine else folder, subfolders_as_classes, limits,
                               name=str(source))
        except ValueError:
            if fresh:  # an archive with nothing usable leaves nothing behind
                shutil.rmtree(folder, ignore_errors=True)
            raise
    if suffix in (".npy", ".npz"):
        return load_arrays(path, limits, name=str(source))
    raise ValueError(f"{source!r}: expected a folder, a .zip or a .npy/.npz file")


def import_upload(upload_path, data_root=None, limits: IngestLimits | None = None) -> Path:
    """Bring an uploaded file (a server-side temp path) under <data_root>/uploads/.

    A .zip is checked and extracted (-> the folder); a .npy/.npz is checked and copied
    (-> the file). Returns a path to pass to `load_dataset`. Same content -> same path.
    """
    limits = limits or IngestLimits()
    root = Path(data_root) if data_root else storage.default_data_root()
    upload = Path(upload_path)
    suffix = upload.suffix.lower()
    if suffix == ".zip":
        return extract_zip(upload, zip_folder(upload, root), limits)
    if suffix in (".npy", ".npz"):
        load_arrays(upload, limits)  # validate before keeping anything
        target = root / "uploads" / f"{_safe_stem(upload)}-{storage.file_digest(upload)}{suffix}"
        if not target.exists():
            _quota_left(target.parent, upload.stat().st_size, upload.name, limits)
            storage.atomic_write_bytes(target, upload.read_bytes())
        return target
    raise ValueError(f"{upload.name}: upload a .zip of images or a .npy/.npz array file")


# ---------------------------------------------------------------------------- zip archives


def extract_zip(path: Path, target: Path, limits: IngestLimits) -> Path:
    """Check, then extract into `target` (zip_folder(): <data_root>/uploads/<name>-<hash>/), atomically
    via a staging folder beside it.

    Nothing is written unless every check passes; what is written is counted as it is written and
    stops at the caps; an archive already extracted is reused.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            files = check_zip(archive, path.name, limits)
            if target.is_dir():
                return target
            declared = sum(info.file_size for info in files)
            size_cap = (limits.max_total_bytes, f"the limit of {limits.max_total_bytes:,} bytes (max_total_bytes)")
            budget = _Budget([size_cap, _ratio_cap(archive_bytes(archive), limits),
                              _quota_left(target.parent, declared, path.name, limits)], path.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
            try:
                for info in files:
                    _extract_entry(archive, info, staging, budget)
                os.replace(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except BAD_STREAM as exc:
        raise Rejected(f"{path.name}: not a valid zip archive ({str(exc) or type(exc).__name__})") from None
    return target


def zip_folder(path: Path, data_root: Path) -> Path:
    """Where an archive's files go: <data_root>/uploads/<name>-<content hash>/."""
    return Path(data_root) / "uploads" / f"{_safe_stem(path)}-{storage.file_digest(path)}"


class _Budget:
    """Bytes an extraction may still write (the smallest of its caps), spent as they are really written."""

    def __init__(self, caps: list[tuple[int, str]], label: str):
        self.left, self.rule = min(caps)
        self.label = label

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise Rejected(f"{self.label}: extracting it would write more than {self.rule}; the archive was rejected")


def _ratio_cap(size: int, limits: IngestLimits) -> tuple[int, str]:
    # as in check_zip, up to 1 MiB in all may compress any amount
    return (max(int(limits.max_ratio * size), 1 << 20),
            f"{limits.max_ratio:.0f} times its real size of {size:,} bytes (max_ratio; a zip bomb?)")


def _quota_left(uploads: Path, incoming: int, label: str, limits: IngestLimits) -> tuple[int, str]:
    """Refuse `incoming` bytes that would take <data_root>/uploads/ past max_uploads_bytes; -> the cap left."""
    used = _tree_bytes(uploads)
    if used + incoming > limits.max_uploads_bytes:
        raise Rejected(f"{label}: storing it would bring the uploads folder to {used + incoming:,} bytes, more than "
                       f"its quota of {limits.max_uploads_bytes:,} (max_uploads_bytes); remove old uploads first")
    return (limits.max_uploads_bytes - used, f"the uploads folder's quota of {limits.max_uploads_bytes:,} bytes "
                                             f"(max_uploads_bytes), {used:,} already used")


def check_uploads_quota(data_root: Path, incoming: int, label: str, limits: IngestLimits | None = None) -> None:
    """Refuse (Rejected, naming max_uploads_bytes) `incoming` bytes that would take <data_root>/uploads/
    past its quota: the studio calls this before it stores an upload."""
    _quota_left(Path(data_root) / "uploads", incoming, label, limits or IngestLimits())


def _tree_bytes(folder: Path) -> int:
    total = 0
    for directory, _, filenames in os.walk(folder):
        for filename in filenames:
            try:
                total += os.lstat(os.path.join(directory, filename)).st_size
            except FileNotFoundError:  # removed meanwhile (another extraction's staging)
                pass
    return total


def _extract_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, staging: Path, budget: _Budget) -> None:
    out = storage.resolve_under(staging, info.filename.replace("\\", "/"))  # belt and braces
    out.parent.mkdir(parents=True, exist_ok=True)
    # zipfile stops at the declared size; ask for one byte more (and check the CRC here) to see a longer stream
    probe = copy.copy(info)
    probe.file_size, probe.CRC = info.file_size + 1, None
    written, crc = 0, 0
    with archive.open(probe) as source, open(out, "wb") as sink:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            if written > info.file_size:
                raise Rejected(f"{budget.label}: entry {info.filename!r} inflates past the {info.file_size:,} bytes "
                               "its header declares (a zip bomb?); the archive was rejected")
            budget.spend(len(chunk))
            crc = zlib.crc32(chunk, crc)
            sink.write(chunk)
    if written != info.file_size or crc != info.CRC:
        raise zipfile.BadZipFile(f"entry {info.filename!r} is shorter than declared or fails its CRC-32 check")


def _safe_stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.stem)[:64] or "upload"


# ---------------------------------------------------------------------------- folders


def list_files(folder: Path, boundary: Path, limits: IngestLimits) -> tuple[list[tuple[str, Path]], list]:
    """Sorted (relative posix name, path) of regular files under `folder`, plus skipped ones."""
    found, skipped = [], []
    for directory, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for filename in filenames:
            path = Path(directory) / filename
            rel = path.relative_to(folder).as_posix()
            if any(part.startswith(".") or part == "__MACOSX" for part in rel.split("/")):
                skipped.append((rel, "hidden file"))
                continue
            try:
                storage.resolve_under(boundary, path)
            except ValueError:
                skipped.append((rel, "symbolic link pointing outside " + ("the data root" if boundary != folder
                                                                          else "the folder")))
                continue
            found.append((rel, path))
            if len(found) > limits.max_files:
                raise Rejected(f"{folder.name}: more than {limits.max_files:,} files")
    return sorted(found), skipped


def load_folder(folder: Path, boundary: Path, subfolders_as_classes: bool = False,
                limits: IngestLimits | None = None, name: str | None = None):
    """Every image under `folder` (recursive, sorted) -> Dataset; other files are listed as skipped.
    Files reached through symlinks that leave `boundary` (the data root, or the folder) are skipped.

    Headers first: their pixels in all are capped (max_total_pixels) and the stored size is voted on
    them; then each image is decoded reduced towards that size, one at a time."""
    limits = limits or IngestLimits()
    folder = look_through(folder, subfolders_as_classes)
    files, skipped = list_files(folder, boundary, limits)
    candidates = []  # (relative name, path, (height, width) as shown)
    for rel, path in files:
        if rel in FEATURE_FILES:
            continue
        if subfolders_as_classes and "/" not in rel:
            skipped.append((rel, "not inside a class subfolder"))
            continue
        try:
            _check_file_size(path, limits)
            candidates.append((rel, path, image_size(path, limits)))
        except Rejected as exc:
            skipped.append((rel, str(exc)))
    check_total_pixels([size for *_, size in candidates], name or folder.name, limits)
    ids, images = _decode_all(candidates, limits, skipped)
    if not images:
        reasons = "; ".join(f"{f}: {r}" for f, r in skipped[:5])
        raise ValueError(f"no usable images in {folder.name}" + (f" ({reasons})" if reasons else ""))
    labels, class_names = _folder_labels(ids) if subfolders_as_classes else (None, None)
    features = features_beside(folder, ids, limits)
    stacked = stack_images(images, limits)
    description = (f"{len(ids)} images from {folder.name}" + (f", {len(skipped)} skipped" if skipped else "")
                   + scaled_note([size for *_, size in candidates], stacked.shape[1:3]))
    return make_dataset(name or folder.name, stacked, labels, class_names, ids, description, features,
                        sorted(skipped))


def look_through(folder: Path, subfolders_as_classes: bool = False) -> Path:
    """The folder that holds the data: a folder whose only visible entry is one folder is looked through
    (every OS's "compress folder" wraps `shapes/circles/…` in `shapes/`). With class subfolders it stops
    at a folder whose single child holds no folders of its own: that child is the one class."""
    while True:
        entries = [e for e in folder.iterdir() if not e.name.startswith(".") and e.name != "__MACOSX"]
        if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
            return folder
        child = entries[0]
        if subfolders_as_classes and not any(e.is_dir() and not e.name.startswith(".") for e in child.iterdir()):
            return folder
        folder = child


def scaled_note(sizes: list[tuple[int, int]], stored: tuple[int, int]) -> str:
    """', scaled from 4000×3000 to 256×192 px' when the common size was reduced to fit max_side."""
    if not sizes or max(common_size(sizes)) <= max(stored):  # not reduced (a turned photo is not "scaled")
        return ""
    (h, w), (sh, sw) = common_size(sizes), stored
    return f", scaled from {w}×{h} to {sw}×{sh} px"


def _decode_all(candidates: list, limits: IngestLimits, skipped: list) -> tuple[list[str], list[np.ndarray]]:
    """Decode at the size voted on the headers; when files that failed to decode, or an orientation only
    seen on decoding, change the vote, decode the rest again at the new size (the stored size is always
    the vote among the images kept)."""
    target = stored_size([size for *_, size in candidates], limits) if candidates else None
    while candidates:
        decoded, failed = [], []
        for rel, path, _ in candidates:
            try:
                image, shown = decode_image(_read_capped(path, limits), limits, fit=target)
                decoded.append((rel, path, shown, image))
            except Rejected as exc:
                failed.append((rel, str(exc)))
        skipped.extend(failed)
        vote = stored_size([shown for _, _, shown, _ in decoded], limits) if decoded else target
        if vote == target:
            return [rel for rel, *_ in decoded], [image for *_, image in decoded]
        candidates, target = [(rel, path, shown) for rel, path, shown, _ in decoded], vote
    return [], []


def _check_file_size(path: Path, limits: IngestLimits) -> None:
    if path.stat().st_size > limits.max_file_bytes:
        raise Rejected(f"larger than {limits.max_file_bytes:,} bytes")


def _read_capped(path: Path, limits: IngestLimits) -> bytes:
    _check_file_size(path, limits)
    return path.read_bytes()


def _folder_labels(ids: list[str]) -> tuple[np.ndarray, list[str]]:
    tops = [rel.split("/", 1)[0] for rel in ids]
    class_names = sorted(set(tops))
    index = {name: i for i, name in enumerate(class_names)}
    return np.array([index[t] for t in tops], dtype=np.int64), class_names


def features_beside(folder: Path, ids: list[str], limits: IngestLimits) -> np.ndarray | None:
    """User-supplied embeddings next to the images, or None.

    features.npz with `features` (N, d) and `ids` (relative names) is matched by id;
    features.npy / embeddings.npy rows must follow the images' sorted relative names.
    """
    npz = folder / "features.npz"
    if npz.is_file():
        arrays = read_npz(npz, limits)
        feats, names = arrays.get("features"), arrays.get("ids")
        if feats is None or names is None:
            raise ValueError("features.npz needs arrays 'features' (N, d) and 'ids' (N,)")
        row = {str(n): i for i, n in enumerate(names)}
        missing = [i for i in ids if i not in row]
        if missing:
            raise ValueError(f"features.npz has no row for {len(missing)} images, e.g. {missing[0]!r}")
        return _check_features(feats[[row[i] for i in ids]], len(ids), "features.npz")
    for name in ("features.npy", "embeddings.npy"):
        if (folder / name).is_file():
            return _check_features(read_npy(folder / name, limits), len(ids), name)
    return None


def _check_features(features: np.ndarray, n: int, label: str) -> np.ndarray:
    if features.ndim != 2 or len(features) != n or not np.issubdtype(features.dtype, np.number):
        raise ValueError(f"{label}: expected ({n}, d) numbers for the {n} images ingested, got {features.shape}")
    features = features.astype(np.float32)
    if not np.isfinite(features).all():
        raise ValueError(f"{label} contains NaN or inf")
    return features


# ---------------------------------------------------------------------------- arrays


def _pick(arrays: dict, keys) -> np.ndarray | None:
    return next((arrays[k] for k in keys if k in arrays), None)


def _labels_and_names(labels, class_names, n: int, label: str):
    if labels is None:
        return None, None
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise Rejected(f"{label}: labels must have shape ({n},), got {labels.shape}")
    if labels.dtype.kind in "US":  # string labels -> indices into their sorted names
        names = sorted(set(labels.astype(str).tolist()))
        return np.searchsorted(np.array(names), labels.astype(str)).astype(np.int64), names
    if labels.dtype.kind not in "iub" or (len(labels) and labels.min() < 0):
        raise Rejected(f"{label}: labels must be non-negative integers or strings")
    labels = labels.astype(np.int64)
    if class_names is not None:
        names = [str(c) for c in np.asarray(class_names).tolist()]
        if len(labels) and labels.max() >= len(names):
            raise Rejected(f"{label}: label {labels.max()} has no entry in class_names")
        return labels, names
    return labels, [str(i) for i in range(int(labels.max(initial=-1)) + 1)]


def _sibling(path: Path, kind: str, limits: IngestLimits) -> np.ndarray | None:
    for name in (f"{path.stem}.{kind}.npy", f"{path.stem}_{kind}.npy"):
        if (path.parent / name).is_file():
            return read_npy(path.parent / name, limits)
    return None


def load_arrays(path: Path, limits: IngestLimits | None = None, name: str | None = None):
    """.npz (images/x/arr_0, optional labels/y, class_names, features) or .npy (images; labels
    and features in <stem>_labels.npy / <stem>_features.npy beside it) -> Dataset."""
    limits = limits or IngestLimits()
    if path.suffix.lower() == ".npz":
        arrays = read_npz(path, limits)
        raw = _pick(arrays, IMAGE_KEYS)
        if raw is None:
            raise Rejected(f"{path.name}: no images array (one of {', '.join(IMAGE_KEYS)}); has {sorted(arrays)}")
        labels, features = _pick(arrays, LABEL_KEYS), _pick(arrays, FEATURE_KEYS)
        class_names = arrays.get("class_names")
    else:
        raw = read_npy(path, limits)
        labels, features, class_names = _sibling(path, "labels", limits), _sibling(path, "features", limits), None
    images = to_uint8_images(raw, path.name)
    labels, class_names = _labels_and_names(labels, class_names, len(images), path.name)
    if features is not None:
        features = _check_features(features, len(images), f"{path.name} features")
    ids = [f"{path.name}#{i}" for i in range(len(images))]
    return make_dataset(name or path.name, images, labels, class_names, ids,
                        f"{len(images)} images from {path.name}", features)
