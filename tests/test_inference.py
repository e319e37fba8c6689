"""Predictions on uploaded photos decode exactly as training does."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from core.data.images import ImageRejected, image_from_bytes, load_rgb
from core.network.inference import load_model


def test_upload_decodes_like_a_training_file(tmp_path):
    image = Image.new("RGBA", (40, 30), (200, 10, 10, 0))
    image.paste((10, 200, 10, 255), (0, 0, 20, 30))
    path = tmp_path / "half-clear.png"
    image.save(path)
    uploaded = image_from_bytes(path.read_bytes(), 24)
    np.testing.assert_array_equal(uploaded, load_rgb(path, 24))
    assert uploaded[:, -1].min() == 255  # the transparent half is white, as in training


@pytest.mark.parametrize("data", [b"", b"<html>no</html>", b"\x89PNG\r\n\x1a\ncut"])
def test_non_images_are_rejected(data):
    with pytest.raises(ImageRejected, match="not an image|corrupt"):
        image_from_bytes(data, 16)


def test_upload_bomb_is_rejected_from_its_header():
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (30000).to_bytes(4, "big") * 2  # IHDR width and height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # a valid header, so only the size is wrong
    with pytest.raises(ImageRejected, match="too large to decode safely"):
        image_from_bytes(bytes(data), 16)


def test_a_model_file_with_code_in_it_is_refused_and_the_code_never_runs(tmp_path):
    """Safe mode: a `.keras` holding a Lambda layer (arbitrary Python) is not loaded."""
    import keras

    marker = tmp_path / "ran"
    inputs = keras.Input((4,))
    touch_then_double = eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x * 2)[1]")
    outputs = keras.layers.Lambda(touch_then_double)(inputs)
    path = tmp_path / "hostile.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink(missing_ok=True)  # building the model ran the lambda once, here, on purpose
    with pytest.raises(ValueError, match="holds code"):
        load_model(path)
    assert not marker.exists()
