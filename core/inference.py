"""Predictions on new photos with a saved model (loaded in Keras safe mode only)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from core.errors import InputError, first_line
from core.images import ImageRejected, load_rgb


class ModelRefused(InputError):
    """A model file that will not be loaded: it holds code (Keras safe mode refuses it), or is damaged."""


def load_model(path: str | Path):
    """Load a `.keras` model without running any code stored in it.

    Raises:
        ModelRefused: in one sentence, when Keras's safe mode refuses it or it cannot be read.
    """
    import keras

    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many types for a refused or damaged file
        refused = "safe_mode" in str(error) or "Lambda" in str(error)
        raise ModelRefused(
            f"The model {Path(path).name} was not loaded: "
            + (
                "it holds code (a Lambda layer), which is never run here. Train the model again in Fine-Tune Studio."
                if refused
                else f"it cannot be read ({first_line(error, 120)}). It may be damaged; train it again."
            )
        ) from None


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
