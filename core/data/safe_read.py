"""Reading one untrusted file safely: zip directory checks, image decoding, .npy/.npz headers.

No function here writes anything. `core.data.ingest` assembles these into datasets.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")
ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"7z\xbc\xaf", b"Rar!", b"\xfd7zXZ")


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


# ---------------------------------------------------------------------------- zip directories


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
