"""A dataset made in the dashboard: named classes, photos added from the webcam or from files.

Kept under the data folder (`made/<dataset>/<class>/`), one file per photo named by its content,
so a photo taken or uploaded twice is kept once. Every photo is decoded before it is kept;
anything that is not a usable image is refused with the reason.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from core.base.errors import InputError
from core.base.files import data_home, safe_name, write_atomic
from core.data.images import IMAGE_EXTENSIONS, ImageRejected, image_from_bytes

MAX_CLASSES = 50


def made_root() -> Path:
    return data_home() / "made"


def made_folder(name: str) -> Path:
    """The folder of the made dataset called `name` (a name from a person, made safe for the disk)."""
    clean = safe_name(name.strip(), limit=60, fallback="")
    if not clean:
        raise InputError("Give the dataset a name (letters or digits).")
    return made_root() / clean


def classes_of(folder: Path) -> dict[str, int]:
    """Each class of a made dataset and how many photos it holds."""
    if not folder.is_dir():
        return {}
    return {
        entry.name: sum(1 for p in entry.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        for entry in sorted(folder.iterdir())
        if entry.is_dir() and not entry.name.startswith(".")
    }


def add_class(folder: Path, name: str) -> str:
    """A new (empty) class; its folder name is the name made safe. Returns that name."""
    clean = safe_name(name.strip(), limit=60, fallback="")
    if not clean:
        raise InputError("A class needs a name with letters or digits.")
    if clean not in classes_of(folder) and len(classes_of(folder)) >= MAX_CLASSES:
        raise InputError(f"A dataset made here can have up to {MAX_CLASSES} classes.")
    (folder / clean).mkdir(parents=True, exist_ok=True)
    _touch(folder)
    return clean


def add_photo(folder: Path, class_name: str, data: bytes, suffix: str = ".jpg") -> Path:
    """Keep one photo in a class (once, however often it is added).

    Raises:
        InputError: the class does not exist, or the file is not a usable image (the reason in words).
    """
    if class_name not in classes_of(folder):
        raise InputError(f"There is no class called {class_name!r} in this dataset.")
    try:
        image_from_bytes(data, 32)  # decoded as training will decode it
    except ImageRejected as error:
        raise InputError(f"That file was not added: {error}.") from None
    suffix = suffix.lower() if suffix.lower() in IMAGE_EXTENSIONS else ".jpg"
    path = folder / class_name / f"{hashlib.sha1(data).hexdigest()[:16]}{suffix}"
    if not path.exists():
        write_atomic(path, data, durable=False)
        _touch(folder)
    return path


def _touch(folder: Path) -> None:
    """A change anywhere in the dataset changes its folder's time, which the dashboard's scan cache keys on."""
    os.utime(folder)
