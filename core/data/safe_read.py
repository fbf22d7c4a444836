"""Reading one untrusted file safely: zip directory checks, image decoding, .npy/.npz headers.

No function here writes anything. `core.data.ingest` assembles these into datasets.
"""

from __future__ import annotations

import io
import math
import re
import warnings
import zipfile
from collections import Counter
from contextlib import contextmanager
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
    max_total_pixels: int = 200_000_000  # one ingest: width x height summed over all images (headers) at most
    # the common image size is scaled down to fit this many pixels: above CLIP's 224-pixel input and
    # the map's thumbnails, and a quarter of 512's bytes (10,000 photos at 512x384 RGB are 5.9 GB)
    max_side: int = 256
    max_array_bytes: int = 4 << 30  # .npy/.npz: declared array size at most
    max_uploads_bytes: int = 2 << 30  # <data_root>/uploads/: everything stored there, this upload included


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
    declared, size = sum(info.compress_size for info in infos), archive_bytes(archive)
    if declared > size:  # entries' data cannot overlap: a directory that claims more is forged
        raise Rejected(f"{label}: its entries declare {declared:,} compressed bytes but the archive is only "
                       f"{size:,} bytes (forged sizes, a zip bomb?); the archive was rejected")
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


def archive_bytes(archive: zipfile.ZipFile) -> int:
    """The real size of the archive's file (what the ratio cap is finally measured against)."""
    here = archive.fp.tell()
    try:
        return archive.fp.seek(0, io.SEEK_END)
    finally:
        archive.fp.seek(here)


def _check_ratio(size: int, compressed: int, label: str, limits: IngestLimits) -> None:
    # small entries compress well legitimately; only sizeable ones can be bombs
    if size > (1 << 20) and size > limits.max_ratio * max(compressed, 1):
        raise Rejected(f"{label} has compression ratio {size / max(compressed, 1):.0f}, "
                       f"more than {limits.max_ratio:.0f} (a zip bomb?)")


# ---------------------------------------------------------------------------- images


ORIENTATION = 0x0112  # EXIF tag; 5-8 swap width and height
_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE", 6: "ROTATE_270",
              7: "TRANSVERSE", 8: "ROTATE_90"}  # what ImageOps.exif_transpose does for each orientation


@contextmanager
def _image_errors(head: bytes):
    """Pillow's failures -> Rejected with a reason; decompression-bomb warnings become errors."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except Rejected:
            raise
        except UnidentifiedImageError:
            kind = "an archive (nested archives are not expanded)" if head.startswith(ARCHIVE_MAGIC) \
                else f"not an image in an allowed format ({', '.join(ALLOWED_FORMATS)})"
            raise Rejected(kind) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise Rejected(f"decompression bomb refused: {exc}") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise Rejected(f"truncated or corrupt image: {exc}") from None


def _open(source, limits: IngestLimits):
    """Pillow image, header read and checked, nothing decoded."""
    from PIL import Image

    image = Image.open(source, formats=ALLOWED_FORMATS)
    if image.width * image.height > limits.max_image_pixels:
        raise Rejected(f"{image.width}x{image.height} pixels, more than {limits.max_image_pixels:,}")
    return image


def _orientation(image) -> int:
    """EXIF orientation of an image not yet decoded."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1  # Pillow would decode the whole PNG to look for a late eXIf chunk; decode_image sees it
    return image.getexif().get(ORIENTATION, 1)


def _shown(size: tuple[int, int], orientation: int) -> tuple[int, int]:
    """Pillow (width, height) -> (height, width) as displayed."""
    width, height = size
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def image_size(path: Path, limits: IngestLimits) -> tuple[int, int]:
    """(height, width) of an image file as displayed (EXIF orientation applied), from its header
    alone; raises Rejected for what read_image would refuse before decoding."""
    with open(path, "rb") as handle:
        head = handle.read(8)
        if not head:
            raise Rejected("empty file")
        handle.seek(0)
        with _image_errors(head):
            with _open(handle, limits) as image:
                return _shown(image.size, _orientation(image))


def decode_image(data: bytes, limits: IngestLimits, fit: tuple[int, int] | None = None):
    """Encoded image bytes -> (image (H, W, 1|3) uint8 normalised, (height, width) of the whole image as
    displayed); raises Rejected with a reason.

    With fit=(height, width) the image comes back at that size (fit_image: cover-resize, centre crop),
    and it is never held at more than 4x its cover-resized size per side on the way (4x `fit` when the
    aspect ratios agree): a JPEG decodes at 1/2, 1/4 or 1/8 scale (`Image.draft`), then any image is
    box-reduced by an integer factor (`Image.reduce`, as `thumbnail` does), keeping at least 2x for the
    bicubic step. Other formats have no reduced decoding in Pillow: their one full frame is transient,
    capped by max_image_pixels. Images under 2x `fit` take the same path as without it.
    """
    if not data:
        raise Rejected("empty file")
    with _image_errors(data[:8]):
        image = _open(io.BytesIO(data), limits)
        full = image.size  # (width, height) before any reduction
        if fit:
            scale = _cover_scale(_shown(full, _orientation(image)), fit)
            if scale < 0.5:  # JPEG: let libjpeg scale the DCT; a no-op for other formats
                image.draft(None, (math.ceil(2 * scale * full[0]), math.ceil(2 * scale * full[1])))
        image.load()  # first frame only for GIF/TIFF/WebP
        orientation = image.getexif().get(ORIENTATION, 1)  # read after load: a PNG's eXIf may follow its pixels
        shown = _shown(full, orientation)
        sixteen_bit = image.mode.startswith("I;16")
        if fit:
            factor = int(min(image.width / full[0], image.height / full[1]) / (2 * _cover_scale(shown, fit)))
            if factor > 1:
                image = _reducible(image).reduce(factor)
        if orientation in _TRANSPOSE:
            from PIL import Image

            image = image.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation]))
        array = normalise_mode(image, sixteen_bit)
    if fit:
        if array.shape[2] == 3 and (array == array[..., :1]).all():
            array = array[..., :1]  # a grey picture in an RGB file stays grey (stack_images' rule)
        array = fit_image(array, *fit)
    return array, shown


def read_image(data: bytes, limits: IngestLimits) -> np.ndarray:
    """Encoded image bytes -> (H, W, 1|3) uint8, the whole image, normalised; raises Rejected with a reason."""
    return decode_image(data, limits)[0]


def _cover_scale(shown: tuple[int, int], fit: tuple[int, int]) -> float:
    """The factor fit_image scales a (height, width) image by to cover `fit`."""
    return max(fit[0] / shown[0], fit[1] / shown[1])


def _reducible(image):
    """Modes Image.reduce refuses (palette, 1-bit, 16-bit grey) -> ones it averages correctly."""
    if image.mode in ("P", "PA"):
        return image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
    if image.mode == "1":
        return image.convert("L")
    return image.convert("I") if image.mode.startswith("I;16") else image


def check_total_pixels(sizes: list[tuple[int, int]], label: str, limits: IngestLimits) -> None:
    """Refuse an ingest whose images' headers add up to more pixels than max_total_pixels."""
    total = sum(height * width for height, width in sizes)
    if total > limits.max_total_pixels:
        raise Rejected(f"{label}: its {len(sizes):,} images hold {total:,} pixels in all, more than the limit of "
                       f"{limits.max_total_pixels:,} (max_total_pixels); nothing was decoded")


def normalise_mode(image, sixteen_bit: bool = False) -> np.ndarray:
    """Any Pillow mode -> (H, W, 1) grey or (H, W, 3) RGB uint8.

    16-bit and 32-bit grey are scaled to 8 bits (`sixteen_bit`: the file was 16-bit, though Pillow's
    mode is now "I"); palette images are expanded; transparency is composited onto white (what a
    viewer shows); CMYK/YCbCr/LAB go through Pillow to RGB.
    """
    from PIL import Image

    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        sixteen_bit = sixteen_bit or image.mode.startswith("I;16")
        scale = 255.0 / 65535.0 if values.max(initial=0) > 255 or sixteen_bit else 1.0
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


def common_size(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The most common (height, width); ties: the larger."""
    return max(Counter(sizes).items(), key=lambda kv: (kv[1], kv[0]))[0]


def stored_size(sizes: list[tuple[int, int]], limits: IngestLimits) -> tuple[int, int]:
    """(height, width) a dataset keeps: the most common size (ties: the larger), scaled to fit max_side."""
    height, width = common_size(sizes)
    if max(height, width) > limits.max_side:
        scale = limits.max_side / max(height, width)
        height, width = max(1, round(height * scale)), max(1, round(width * scale))
    return height, width


def stack_images(images: list[np.ndarray], limits: IngestLimits) -> np.ndarray:
    """Images of any sizes -> (N, H, W, C) at the most common size (scaled to fit max_side).

    C is 1 unless some image has colour (RGB files of grey pictures, e.g. grey JPEGs or GIFs,
    stay grey); grey images go to RGB when any image is colour."""
    height, width = stored_size([im.shape[:2] for im in images], limits)
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
