"""Image arrays to mosaics and PNG bytes (uint8 (H, W, C), C in {1, 3})."""

from __future__ import annotations

import numpy as np


def tile_grid(images: np.ndarray, cols: int = 8, pad: int = 1) -> np.ndarray:
    """(n, H, W, C) uint8 -> one (rows·(H+pad)−pad, cols·(W+pad)−pad, C) uint8 mosaic, white gaps."""
    n, h, w, c = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, q = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, q * (w + pad) : q * (w + pad) + w] = image
    return out


def png_bytes(array: np.ndarray) -> bytes:
    """(H, W, C) uint8 -> PNG file bytes."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(buffer, format="PNG")
    return buffer.getvalue()
