"""Paths in a run kept as a file: never this server's, and never outside the photo folders when opened.

A run file (`core.sharing.run_files`) names photos: the data the run used, every photo scanned, every
mistake. Packing writes each path relative to the folder it lives in, as `data-root:REL`
(under `STUDIO_DATA_ROOT`) or `studio-data:REL` (the studio's own photo folders: the demo,
extracted zips, uploads, photos made here), and anything else as `elsewhere:NAME` (its name
only). Opening turns each back into a path on this server only when it stays inside those same
folders; everything else is dropped (a photo becomes "not on this server"), so a crafted file
can never make a page, the report or the CLI read a file elsewhere on the server. Old run
files with absolute paths get the same check.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

from core.base.files import data_home, data_root

DATA_ROOT, STUDIO_DATA, ELSEWHERE = "data-root:", "studio-data:", "elsewhere:"
PHOTO_FOLDERS = ("demo", "extracted", "uploads", "made")  # the studio's own folders that hold photos
PATH_KEYS = {"path", "root", "copy_of"}  # in a run's JSON, always a path whatever it looks like
SOURCE_KEYS = {"data", "val_data", "test_data", "weights"}  # settings that are a path when they look like one


def _places() -> list[tuple[str, Path]]:
    studio = data_home().resolve()
    return [(DATA_ROOT, data_root())] + [(f"{STUDIO_DATA}{name}/", studio / name) for name in PHOTO_FOLDERS]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def confined(path: str | os.PathLike) -> Path | None:
    """`path` resolved (links followed) when it lies in a photo folder of this server, else None."""
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    return resolved if any(_inside(resolved, folder) for _, folder in _places()) else None


def to_portable(path: str, key: str = "") -> str:
    """This server's `path` as a run file carries it."""
    found = confined(path) if path else None
    if found is not None:
        for prefix, folder in _places():
            if _inside(found, folder):
                relative = found.relative_to(folder).as_posix()
                return prefix + ("" if relative == "." else relative)
    return ELSEWHERE + PurePosixPath(str(path).replace("\\", "/")).name if path else path


def to_local(value: str, key: str = "") -> str:
    """What a run file names as a path on this server, when it is inside its photo folders.

    Otherwise a photo's path becomes "" (not on this server) and a setting's (the data) keeps only
    the folder's name, as `elsewhere:NAME`, so the run can still say what it was trained on.
    """
    if not value:
        return value
    found = None
    for prefix, folder in _places():
        if value.startswith(prefix):
            relative = value[len(prefix) :]
            found = confined(folder / relative if relative else folder)
            found = found if found is not None and _inside(found, folder.resolve()) else None
            break
    else:
        if os.path.isabs(value):  # a run file made before paths travelled
            found = confined(value)
    if found is not None:
        return str(found)
    if key in SOURCE_KEYS:
        name = value[len(ELSEWHERE) :] if value.startswith(ELSEWHERE) else PurePosixPath(value.replace("\\", "/")).name
        return ELSEWHERE + name
    return ""


def _looks_like_path(value: str) -> bool:
    return value.startswith((DATA_ROOT, STUDIO_DATA, ELSEWHERE, "/", "~", ".")) or "/" in value or "\\" in value


def _walk(value: Any, change, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: _walk(item, change, str(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, change, key) for item in value]
    if isinstance(value, str) and value and (key in PATH_KEYS or (key in SOURCE_KEYS and _looks_like_path(value))):
        return change(value, key)
    if isinstance(value, str) and os.path.isabs(value):
        return change(value, "")  # a path under any other name
    return value


def portable_json(data: Any) -> Any:
    """A run file's JSON with every path of this server made portable."""
    return _walk(data, to_portable)


def local_json(data: Any) -> Any:
    """An opened run file's JSON with every path made local, or dropped where it leads outside the photo folders."""
    return _walk(data, to_local)


def source_elsewhere(source: str) -> str | None:
    """The folder's name when a run's data was left on another server (`elsewhere:NAME`), else None."""
    return source[len(ELSEWHERE) :] if source.startswith(ELSEWHERE) else None
