"""Predictions on new photos with a saved model (loaded in Keras safe mode only)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from core.images import ImageRejected, load_rgb


def load_model(path: str | Path):
    """Load a `.keras` model without running any code stored in it."""
    import keras

    return keras.models.load_model(path, safe_mode=True, compile=False)


def read_photo(path: str | Path, image_size: int) -> np.ndarray:
    """A photo file, decoded as `image_from_bytes` decodes it.

    Raises:
        ImageRejected: not an image, or a file that cannot be read (the reason, in words).
    """
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ImageRejected(f"cannot be read ({error.strerror or error})") from None
    return image_from_bytes(data, image_size)


def image_from_bytes(data: bytes, image_size: int) -> np.ndarray:
    """An uploaded photo as upright RGB uint8 at `image_size`, decoded exactly as training decodes.

    Raises:
        ImageRejected: not an image, or too large to decode safely.
    """
    try:
        return load_rgb(io.BytesIO(data), image_size)
    except ImageRejected:
        raise
    except Exception:
        raise ImageRejected("not an image this tool can read (JPEG, PNG, GIF, BMP, WebP or TIFF)") from None
