"""Every bad and odd input file the tool must survive, generated on the fly (no binary junk in the repo).

`REJECTED` are files that must be left out with the reason given (a regular expression);
`ACCEPTED` are odd but real photos that must be used. Each entry builds its bytes from
nothing, so the same cases drive the engine, the CLI and the page tests.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image


def _photo(size: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8), "RGB")


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def decompression_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header claiming 900 megapixels: a few dozen bytes on disk."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )


def truncated(fmt: str) -> bytes:
    data = _encoded(_photo(256), fmt)
    return data[: len(data) // 2]


def corrupt_jpeg() -> bytes:
    """A JPEG whose compressed data is overwritten with garbage after the header."""
    data = bytearray(_encoded(_photo(128), "JPEG"))
    data[400:] = bytes(range(256)) * ((len(data) - 400) // 256) + bytes((len(data) - 400) % 256)
    return bytes(data)


def animated_gif() -> bytes:
    frames = [_photo(40, seed) for seed in range(3)]
    return _encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """A 64x32 landscape stored with EXIF orientation 6 (shown rotated 90 degrees: portrait)."""
    image = Image.new("RGB", (64, 32), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encoded(image, "JPEG", exif=exif.tobytes())


def in_mode(mode: str, fmt: str = "PNG") -> bytes:
    image = _photo()
    if mode == "I;16":
        grey = np.asarray(image.convert("L"), dtype=np.uint16) * 257
        return _encoded(Image.fromarray(grey), fmt)
    return _encoded(image.convert(mode), fmt)


# name -> (file name, bytes, reason pattern)
REJECTED: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "zero bytes": ("empty.jpg", lambda: b"", "empty file"),
    "text file": ("notes.txt", lambda: b"these are my notes", r"not an image \(\.txt file\)"),
    "html saved as jpg": ("page.jpg", lambda: b"<!DOCTYPE html><html><body>Not found</body></html>", "web page"),
    "random bytes as png": ("noise.png", lambda: bytes(range(256)) * 8, "not an image"),
    "truncated jpeg": ("cut.jpg", lambda: truncated("JPEG"), "corrupt or truncated"),
    "truncated png": ("cut.png", lambda: truncated("PNG"), "corrupt or truncated"),
    "corrupt jpeg": ("garbled.jpg", corrupt_jpeg, "corrupt or truncated"),
    "decompression bomb": ("bomb.png", decompression_bomb, "too large to decode safely"),
    "zip inside": ("more photos.zip", lambda: _zip_bytes({"a.png": _encoded(_photo(), "PNG")}), "not an image"),
    "pdf": ("scan.pdf", lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "not an image"),
}

# name -> (file name, bytes); each must be read and used
ACCEPTED: dict[str, tuple[str, Callable[[], bytes]]] = {
    "bmp named jpg": ("really a bitmap.jpg", lambda: _encoded(_photo(), "BMP")),
    "animated gif": ("moving.gif", animated_gif),
    "webp": ("photo.webp", lambda: _encoded(_photo(), "WEBP")),
    "tiff": ("photo.tiff", lambda: _encoded(_photo(), "TIFF")),
    "cmyk jpeg": ("print.jpg", lambda: in_mode("CMYK", "JPEG")),
    "16-bit png": ("scan16.png", lambda: in_mode("I;16")),
    "greyscale": ("grey.png", lambda: in_mode("L")),
    "rgba": ("cutout.png", lambda: in_mode("RGBA")),
    "palette": ("palette.png", lambda: in_mode("P")),
    "exif rotated": ("phone.jpg", exif_rotated_jpeg),
    "non-ascii name": ("Ünïcødé 猫 фото.png", lambda: _encoded(_photo(seed=5), "PNG")),
    "very long name": ("x" * 200 + ".png", lambda: _encoded(_photo(seed=6), "PNG")),
    "spaces and quotes": ("my 'best' photo (1).png", lambda: _encoded(_photo(seed=7), "PNG")),
}

# OS litter: never used, never reported
JUNK: dict[str, bytes] = {
    ".DS_Store": b"\x00\x00\x00\x01Bud1",
    "Thumbs.db": b"\xd0\xcf\x11\xe0",
    "desktop.ini": b"[.ShellClassInfo]",
    "._photo.png": b"\x00\x05\x16\x07",
    ".hidden.png": b"hidden",
}


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def write_bad_files(folder: Path, cases=None) -> dict[str, Path]:
    """Write the REJECTED cases (or the named subset) into `folder`; return case -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for case in cases or REJECTED:
        name, make, _ = REJECTED[case]
        written[case] = folder / name
        written[case].write_bytes(make())
    return written


def write_odd_photos(folder: Path) -> dict[str, Path]:
    """Write the ACCEPTED cases into `folder`; return case -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for case, (name, make) in ACCEPTED.items():
        written[case] = folder / name
        written[case].write_bytes(make())
    return written


def write_junk(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in JUNK.items():
        (folder / name).write_bytes(data)
    (folder / "__MACOSX").mkdir(exist_ok=True)
    (folder / "__MACOSX" / "._a.png").write_bytes(b"\x00\x05")


def messy_dataset(root: Path, good_per_class: int = 8) -> Path:
    """Two classes of good photos, with every bad file, odd photo and piece of litter mixed in."""
    from tests.conftest import CLASS_COLOURS, write_image

    for label in ("red", "green"):
        for k in range(good_per_class):
            write_image(root / label / f"{label}_{k:02d}.png", CLASS_COLOURS[label])
    write_bad_files(root / "red")
    write_odd_photos(root / "green")
    write_junk(root)
    write_junk(root / "red")
    return root


def _encrypted_flag(data: bytes) -> bytes:
    """Python cannot write encrypted zips: set the 'encrypted' bit in both headers by hand."""
    data = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        position = data.find(signature)
        data[position + offset] |= 0x1
    return bytes(data)


def _symlink_zip() -> bytes:
    import stat
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("photos/red/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


def _bomb_zip() -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("red/zeros.png", b"\0" * (60 * 1024 * 1024))
    return buffer.getvalue()


_PNG = lambda: _encoded(_photo(), "PNG")  # noqa: E731

# name -> (bytes of a .zip, what the user is told)
HOSTILE_ZIPS: dict[str, tuple[Callable[[], bytes], str]] = {
    "dot-dot entry": (lambda: _zip_bytes({"red/a.png": _PNG(), "../../evil.png": b"x"}), "unsafe path"),
    "absolute path": (lambda: _zip_bytes({"red/a.png": _PNG(), "/etc/evil.png": b"x"}), "unsafe path"),
    "drive letter": (lambda: _zip_bytes({"C:/evil.png": b"x"}), "unsafe path"),
    "zip bomb": (_bomb_zip, "zip bomb"),
    "password": (lambda: _encrypted_flag(_zip_bytes({"red/a.png": _PNG()})), "password-protected"),
    "not a zip": (lambda: b"<html>this is a web page, not a zip</html>", "not a zip file"),
    "only a symlink": (_symlink_zip, "No usable images"),
    "zip inside a zip only": (lambda: _zip_bytes({"inner.zip": _zip_bytes({"red/a.png": _PNG()})}), "No usable images"),
}
