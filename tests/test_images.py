"""Reading single files: every kind of bad or odd image gets a clear verdict."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from core.data.images import ImageRejected, inspect_image, is_junk, load_rgb
from tests.conftest import write_image


def _jpeg_bytes(size=64, colour=(200, 50, 50)):
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.jpg", b"", "empty file"),
        ("page.jpg", b"<!DOCTYPE html><html><body>404</body></html>", "web page"),
        ("notes.txt", b"hello", r"not an image \(\.txt file\)"),
        ("noise.png", bytes(range(256)) * 8, "not an image"),
    ],
)
def test_non_images_are_rejected_with_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageRejected, match=reason):
        inspect_image(path)


def test_truncated_jpeg_is_rejected_as_corrupt(tmp_path):
    path = tmp_path / "cut.jpg"
    data = _jpeg_bytes(256)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageRejected, match="corrupt or truncated"):
        inspect_image(path)


def test_decompression_bomb_is_rejected_from_its_header(tmp_path):
    # A valid PNG header claiming 30000 x 30000 pixels: 900 megapixels, a few bytes on disk.
    path = tmp_path / "bomb.png"
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    with pytest.raises(ImageRejected, match="too large to decode safely"):
        inspect_image(path)


def test_bmp_named_jpg_is_read_by_its_content(tmp_path):
    path = write_image(tmp_path / "photo.jpg", (10, 200, 10), fmt="BMP")
    assert inspect_image(path).format == "BMP"
    assert load_rgb(path, 16).shape == (16, 16, 3)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16"])
def test_odd_colour_modes_become_rgb(tmp_path, mode):
    fmt = {"CMYK": "JPEG", "I;16": "PNG"}.get(mode, "PNG")
    path = tmp_path / f"odd.{fmt.lower()}"
    image = Image.new("RGB", (40, 30), (120, 60, 200))
    if mode == "I;16":
        image = Image.fromarray(np.full((30, 40), 40000, dtype=np.uint16))
    else:
        image = image.convert(mode)
    image.save(path, fmt)
    pixels = load_rgb(path, 24)
    assert pixels.shape == (24, 24, 3) and pixels.dtype == np.uint8
    if mode == "I;16":
        assert 150 < pixels.mean() < 160  # 40000 of 65535 scaled to 8 bits, not clipped to white


def test_transparent_areas_become_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(path)
    assert load_rgb(path, 8).min() == 255


def test_exif_rotated_photo_is_loaded_upright(tmp_path):
    # Stored 40 wide x 20 high with "rotate 90" in EXIF: a viewer shows it 20 wide x 40 high.
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 20, 20))  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    image.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    upright = load_rgb(path, 40)
    # Orientation 6 rotates 90 degrees clockwise: the stored left half ends up on top.
    assert upright[:20].mean() > 200 and upright[20:].mean() < 60


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    pixels = load_rgb(path, 16)
    assert pixels[..., 0].mean() > 200 and pixels[..., 2].mean() < 50


def test_grey_placeholder_is_rejected_but_a_greyscale_photo_is_not(tmp_path):
    placeholder = Image.new("RGB", (300, 300), (240, 240, 240))
    from PIL import ImageDraw

    ImageDraw.Draw(placeholder).text((100, 140), "IMAGE NOT FOUND", fill=(90, 90, 90))
    placeholder.save(tmp_path / "missing.gif")
    with pytest.raises(ImageRejected, match="placeholder"):
        inspect_image(tmp_path / "missing.gif")
    rng = np.random.default_rng(0)
    grey_photo = Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8), "L")
    grey_photo.save(tmp_path / "xray.png")
    assert inspect_image(tmp_path / "xray.png").format == "PNG"


@pytest.mark.parametrize(
    "name, junk",
    [
        (".DS_Store", True),
        ("Thumbs.db", True),
        ("__MACOSX", True),
        ("._cat.jpg", True),
        ("cat.jpg", False),
        ("Ünïcødé 猫.jpg", False),
    ],
)
def test_os_junk_is_recognised(name, junk):
    assert is_junk(name) is junk
