"""Predictions on new photos with a saved model (loaded in Keras safe mode only)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from core.images import MAX_PIXELS, ImageRejected


def load_model(path: str | Path):
    """Load a `.keras` model without running any code stored in it."""
    import keras

    return keras.models.load_model(path, safe_mode=True, compile=False)


def image_from_bytes(data: bytes, image_size: int) -> np.ndarray:
    """An uploaded photo as upright RGB uint8 at `image_size`.

    Raises:
        ImageRejected: not an image, or too large to decode safely.
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageRejected("too large to decode safely")
            image.draft("RGB", (image_size, image_size))
            image = ImageOps.exif_transpose(image) or image
            rgb = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except ImageRejected:
        raise
    except Exception:
        raise ImageRejected("not an image this tool can read (JPEG, PNG, GIF, BMP, WebP or TIFF)") from None


def top_predictions(model, pixels: np.ndarray, class_names: list[str], k: int = 3) -> list[tuple[str, float]]:
    """The `k` most likely classes for one image, with probabilities."""
    probabilities = np.asarray(model.predict(pixels[None].astype("float32"), verbose=0))[0]
    order = np.argsort(probabilities)[::-1][:k]
    return [(class_names[i], float(probabilities[i])) for i in order]
