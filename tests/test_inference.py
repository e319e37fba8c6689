"""Predictions on uploaded photos decode exactly as training does."""

import io

import numpy as np
import pytest
from PIL import Image

from core.images import ImageRejected, load_rgb
from core.inference import image_from_bytes


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
    with pytest.raises(ImageRejected):
        image_from_bytes(data, 16)


def test_upload_bomb_is_rejected_from_its_header():
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = (30000).to_bytes(4, "big") * 2  # IHDR width and height
    with pytest.raises(ImageRejected):
        image_from_bytes(bytes(data), 16)
