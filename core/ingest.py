"""Safe ingest of user data: image folders, zip uploads, .npy/.npz arrays.

Rules (each has a test in tests/core/test_ingest.py):
- every path from a user resolves inside the data root (`storage.resolve_under`);
- a zip with an entry that is absolute, has a drive letter or a `..` part, is a symlink or is
  encrypted is rejected whole, naming the entry, before anything is written; caps on entry
  count, total declared size and compression ratio are checked before extracting; nested
  archives are never expanded;
- images are identified by content against an allow-list (PNG, JPEG, WebP, BMP, GIF first
  frame, TIFF) with Pillow's decompression-bomb protection on; empty, truncated and
  non-image files are skipped and listed with a reason; CMYK, 16-bit, palette, alpha and
  EXIF-rotated images are normalised; files are read in sorted order, so re-running gives
  the same dataset;
- arrays load with `allow_pickle=False` after their declared shape and size are checked.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import storage

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"7z\xbc\xaf", b"Rar!", b"\xfd7zXZ")
FEATURE_FILES = ("features.npy", "embeddings.npy", "features.npz")
IMAGE_KEYS, LABEL_KEYS = ("images", "x", "X", "arr_0"), ("labels", "y", "Y", "arr_1")
FEATURE_KEYS = ("features", "embeddings")


@dataclass
class IngestLimits:
    max_entries: int = 100_000  # zip: entries at most
    max_total_bytes: int = 4 << 30  # zip: declared uncompressed size at most
    max_ratio: float = 200.0  # zip: uncompressed/compressed at most (entries over 1 MiB, and overall)
    max_files: int = 200_000  # folder: files looked at, at most
    max_file_bytes: int = 64 << 20  # folder: larger files are skipped
    max_image_pixels: int = 50_000_000  # per image, read from the header before decoding
    max_side: int = 512  # the common image size is scaled down to fit this many pixels
    max_array_bytes: int = 4 << 30  # .npy/.npz: declared array size at most


class Rejected(ValueError):
    """One file cannot be ingested; the reason is shown to the user."""


# ---------------------------------------------------------------------------- entry point


def load_path(source: str, data_root: Path, subfolders_as_classes: bool = False,
              limits: IngestLimits | None = None):
    """A folder, .zip or .npy/.npz under `data_root` -> core.datasets.Dataset."""
    limits = limits or IngestLimits()
    path = storage.resolve_under(data_root, source)
    if not path.exists():
        raise FileNotFoundError(f"{source!r} is not a built-in (digits, mnist, fashion-mnist) "
                                f"nor a file or folder under the data root {data_root}")
    suffix = path.suffix.lower()
    if path.is_dir():
        return load_folder(path, data_root, subfolders_as_classes, limits, name=str(source))
    if suffix == ".zip":
        folder = extract_zip(path, data_root, limits)
        return load_folder(folder, data_root, subfolders_as_classes, limits, name=str(source))
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
        return extract_zip(upload, root, limits)
    if suffix in (".npy", ".npz"):
        load_arrays(upload, limits)  # validate before keeping anything
        target = root / "uploads" / f"{_safe_stem(upload)}-{_file_hash(upload)}{suffix}"
        if not target.exists():
            storage.atomic_write_bytes(target, upload.read_bytes())
        return target
    raise ValueError(f"{upload.name}: upload a .zip of images or a .npy/.npz array file")


# ---------------------------------------------------------------------------- zip archives


def _bad_entry_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename.replace("\\", "/")
    if "\x00" in name:
        return "has a NUL byte in its name"
    if name.startswith("/"):
        return "is an absolute path"
    if re.match(r"^[A-Za-z]:", name):
        return "has a drive letter"
    if ".." in name.split("/"):
        return "has a '..' path component"
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def check_zip(archive: zipfile.ZipFile, label: str, limits: IngestLimits) -> list[zipfile.ZipInfo]:
    """Every rule checked on the central directory, before anything is extracted.

    Returns the file entries to extract; raises Rejected (naming the entry) otherwise.
    """
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise Rejected(f"{label}: {len(infos)} entries, more than the limit of {limits.max_entries}")
    seen = set()
    for info in infos:
        reason = _bad_entry_reason(info)
        if reason:
            raise Rejected(f"{label}: entry {info.filename!r} {reason}; the archive was rejected")
        name = info.filename.replace("\\", "/").rstrip("/")
        if name in seen:
            raise Rejected(f"{label}: entry {info.filename!r} appears twice; the archive was rejected")
        seen.add(name)
        _check_ratio(info.file_size, info.compress_size, f"{label}: entry {info.filename!r}", limits)
    files = [info for info in infos if not info.is_dir()]
    total = sum(info.file_size for info in files)
    if total > limits.max_total_bytes:
        raise Rejected(f"{label}: declares {total:,} bytes uncompressed, more than {limits.max_total_bytes:,}")
    _check_ratio(total, sum(info.compress_size for info in files), label, limits)
    return files


def _check_ratio(size: int, compressed: int, label: str, limits: IngestLimits) -> None:
    # small entries compress well legitimately; only sizeable ones can be bombs
    if size > (1 << 20) and size > limits.max_ratio * max(compressed, 1):
        raise Rejected(f"{label} has compression ratio {size / max(compressed, 1):.0f}, "
                       f"more than {limits.max_ratio:.0f} (a zip bomb?)")


def extract_zip(path: Path, data_root: Path, limits: IngestLimits) -> Path:
    """Check, then extract into <data_root>/uploads/<name>-<hash>/ (atomic via a staging folder).

    Nothing is written unless every check passes; an archive already extracted is reused.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            files = check_zip(archive, path.name, limits)
            target = data_root / "uploads" / f"{_safe_stem(path)}-{_file_hash(path)}"
            if target.is_dir():
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
            try:
                for info in files:
                    _extract_entry(archive, info, staging)
                os.replace(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except zipfile.BadZipFile as exc:
        raise Rejected(f"{path.name}: not a valid zip archive ({exc})") from None
    return target


def _extract_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, staging: Path) -> None:
    out = storage.resolve_under(staging, info.filename.replace("\\", "/"))  # belt and braces
    out.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(info) as source, open(out, "wb") as sink:
        # zipfile stops at the declared size and checks the CRC, so a lying header fails here
        shutil.copyfileobj(source, sink, 1 << 20)


def _safe_stem(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", path.stem)[:64] or "upload"


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------- images


def read_image(data: bytes, limits: IngestLimits) -> np.ndarray:
    """Encoded image bytes -> (H, W, 1|3) uint8, normalised; raises Rejected with a reason."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise Rejected("empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
            if image.width * image.height > limits.max_image_pixels:
                raise Rejected(f"{image.width}x{image.height} pixels, more than {limits.max_image_pixels:,}")
            image.load()  # first frame only for GIF/TIFF/WebP
            image = ImageOps.exif_transpose(image)
        except UnidentifiedImageError:
            kind = "an archive (nested archives are not expanded)" if data.startswith(ARCHIVE_MAGIC) \
                else f"not an image in an allowed format ({', '.join(ALLOWED_FORMATS)})"
            raise Rejected(kind) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Rejected(f"decompression bomb refused: {exc}") from None
        except (OSError, SyntaxError, ValueError) as exc:
            if isinstance(exc, Rejected):
                raise
            raise Rejected(f"truncated or corrupt image: {exc}") from None
    return normalise_mode(image)


def normalise_mode(image) -> np.ndarray:
    """Any Pillow mode -> (H, W, 1) grey or (H, W, 3) RGB uint8.

    16-bit and 32-bit grey are scaled to 8 bits; palette images are expanded; transparency is
    composited onto white (what a viewer shows); CMYK/YCbCr/LAB go through Pillow to RGB.
    """
    from PIL import Image

    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 / 65535.0 if values.max(initial=0) > 255 or image.mode.startswith("I;16") else 1.0
        return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)[..., None]
    if image.mode in ("LA", "La", "RGBA", "RGBa"):
        grey = image.mode in ("LA", "La")
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA")).convert("L" if grey else "RGB")
    if image.mode == "1":
        image = image.convert("L")
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if array.ndim == 2 else array


def fit_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, C) uint8 -> (height, width, C): PIL bicubic (anti-aliased) cover-resize, centre crop."""
    from PIL import Image

    h, w, channels = image.shape
    if (h, w) == (height, width):
        return image
    scale = max(height / h, width / w)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    pil = Image.fromarray(image[..., 0] if channels == 1 else image).resize((new_w, new_h), Image.Resampling.BICUBIC)
    left, top = (new_w - width) // 2, (new_h - height) // 2
    return np.asarray(pil.crop((left, top, left + width, top + height))).reshape(height, width, channels)


def stack_images(images: list[np.ndarray], limits: IngestLimits) -> np.ndarray:
    """Images of any sizes -> (N, H, W, C) at the most common size (scaled to fit max_side).

    C is 1 unless some image has colour (RGB files of grey pictures, e.g. grey JPEGs or GIFs,
    stay grey); grey images go to RGB when any image is colour."""
    (height, width), _ = max(Counter(im.shape[:2] for im in images).items(), key=lambda kv: (kv[1], kv[0]))
    if max(height, width) > limits.max_side:
        scale = limits.max_side / max(height, width)
        height, width = max(1, round(height * scale)), max(1, round(width * scale))
    channels = 3 if any(im.shape[2] == 3 and not (im == im[..., :1]).all() for im in images) else 1
    if channels == 1:
        images = [im[..., :1] for im in images]
    out = np.empty((len(images), height, width, channels), np.uint8)
    for i, image in enumerate(images):
        out[i] = fit_image(image, height, width)  # (h, w, 1) broadcasts to RGB
    return out


# ---------------------------------------------------------------------------- folders


def list_files(folder: Path, data_root: Path, limits: IngestLimits) -> tuple[list[tuple[str, Path]], list]:
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
                storage.resolve_under(data_root, path)
            except ValueError:
                skipped.append((rel, "symbolic link pointing outside the data root"))
                continue
            found.append((rel, path))
            if len(found) > limits.max_files:
                raise Rejected(f"{folder.name}: more than {limits.max_files:,} files")
    return sorted(found), skipped


def load_folder(folder: Path, data_root: Path, subfolders_as_classes: bool = False,
                limits: IngestLimits | None = None, name: str | None = None):
    """Every image under `folder` (recursive, sorted) -> Dataset; other files are listed as skipped."""
    from core.datasets import make_dataset

    limits = limits or IngestLimits()
    files, skipped = list_files(folder, data_root, limits)
    ids, images = [], []
    for rel, path in files:
        if rel in FEATURE_FILES:
            continue
        if subfolders_as_classes and "/" not in rel:
            skipped.append((rel, "not inside a class subfolder"))
            continue
        try:
            images.append(read_image(_read_capped(path, limits), limits))
            ids.append(rel)
        except Rejected as exc:
            skipped.append((rel, str(exc)))
    if not images:
        reasons = "; ".join(f"{f}: {r}" for f, r in skipped[:5])
        raise ValueError(f"no usable images in {folder.name}" + (f" ({reasons})" if reasons else ""))
    labels, class_names = _folder_labels(ids) if subfolders_as_classes else (None, None)
    features = features_beside(folder, ids, limits)
    description = f"{len(ids)} images from {folder.name}" + (f", {len(skipped)} skipped" if skipped else "")
    return make_dataset(name or folder.name, stack_images(images, limits), labels, class_names, ids,
                        description, features, sorted(skipped))


def _read_capped(path: Path, limits: IngestLimits) -> bytes:
    if path.stat().st_size > limits.max_file_bytes:
        raise Rejected(f"larger than {limits.max_file_bytes:,} bytes")
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


def _check_header(shape, dtype: np.dtype, label: str, limits: IngestLimits) -> int:
    if dtype.hasobject:
        raise Rejected(f"{label}: object arrays are not loaded (allow_pickle=False)")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if nbytes > limits.max_array_bytes:
        raise Rejected(f"{label}: declared shape {shape} ({nbytes:,} bytes) is larger than "
                       f"{limits.max_array_bytes:,} bytes")
    return nbytes


def _read_header(handle):
    version = np.lib.format.read_magic(handle)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return reader(handle)


def read_npy(path: Path, limits: IngestLimits) -> np.ndarray:
    """A .npy file, with its declared shape checked against the limits and the file size."""
    with open(path, "rb") as handle:
        try:
            shape, _, dtype = _read_header(handle)
        except ValueError as exc:
            raise Rejected(f"{path.name}: not a valid .npy file ({exc})") from None
        nbytes = _check_header(shape, dtype, path.name, limits)
        if handle.tell() + nbytes != path.stat().st_size:
            raise Rejected(f"{path.name}: declared shape {shape} does not match the file size (truncated?)")
    return np.load(path, allow_pickle=False)


def read_npz(path: Path, limits: IngestLimits) -> dict[str, np.ndarray]:
    """A .npz file: zip rules and every member's declared shape checked before loading."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in check_zip(archive, path.name, limits):
                with archive.open(info) as member:
                    shape, _, dtype = _read_header(member)
                    _check_header(shape, dtype, f"{path.name}:{info.filename}", limits)
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:
        if isinstance(exc, Rejected):
            raise
        raise Rejected(f"{path.name}: not a valid .npz file ({exc})") from None


def to_uint8_images(array: np.ndarray, label: str) -> np.ndarray:
    """(N, H, W), (N, H, W, C) or (N, C, H, W) numbers -> (N, H, W, 1|3) uint8.

    Floats in [0, 1] are scaled by 255; integers/floats in [0, 255] are kept; uint16 is
    scaled by 255/65535; RGBA is composited onto white.
    """
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        raise Rejected(f"{label}: images must be (N, H, W[, C]), got shape {array.shape}")
    if array.shape[-1] not in (1, 3, 4) and array.shape[1] in (1, 3, 4):
        array = array.transpose(0, 2, 3, 1)  # channels-first (channels-last wins when ambiguous)
    if array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
        raise Rejected(f"{label}: cannot read {array.shape} as N images with 1, 3 or 4 channels")
    values = _to_unit_range(array, label) * 255.0
    if values.shape[-1] == 4:
        alpha = values[..., 3:] / 255.0
        values = values[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _to_unit_range(array: np.ndarray, label: str) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise Rejected(f"{label}: images must be numbers, got {array.dtype}")
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise Rejected(f"{label}: images contain NaN or inf")
    low, high = float(values.min()), float(values.max())
    if array.dtype == np.uint16 and high > 255:
        return values / 65535.0
    if low >= 0 and high <= 1 and np.issubdtype(array.dtype, np.floating):
        return values
    if low >= 0 and high <= 255:
        return values / 255.0
    raise Rejected(f"{label}: image values span [{low:g}, {high:g}]; expected [0, 1] or [0, 255]")


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
    from core.datasets import make_dataset

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
