"""Writing files so that a reader, a crash or a full disk never leaves half of one.

Everything the tool writes that another process reads (run files, checkpoints, caches,
uploads) is written beside its final name and renamed over it when complete: a reader
sees the old file or the new one, and a killed writer leaves only a temporary file
that is removed.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path


def data_home() -> Path:
    """Where the tool keeps what it is given: extracted zips, uploads, uploaded weights, the demo set
    (`STUDIO_DATA`, default `./data`)."""
    return Path(os.environ.get("STUDIO_DATA", "data")).absolute()


def data_root() -> Path:
    """Server folders people may pick their photos from: `STUDIO_DATA_ROOT`, default `./datasets`."""
    return Path(os.environ.get("STUDIO_DATA_ROOT", "datasets")).resolve()


def temporary_name(path: Path) -> Path:
    """A hidden name beside `path`, unique to this process, keeping the suffix (Keras and NumPy check it)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on any failure it is removed."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, content: str | bytes, durable: bool = True) -> None:
    """Replace `path` with `content` in one step.

    `durable` also forces the bytes to disk first (fsync), so even a power cut leaves a whole file.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(content.encode() if isinstance(content, str) else content)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())


def save_model_atomic(model, path: str | os.PathLike) -> None:
    """`model.save` beside, then rename: a process killed mid-save leaves the previous file intact."""
    with atomic_path(path) as tmp:
        model.save(tmp)


def remove_temporary_files(folder: Path) -> None:
    """Delete half-written files a failed writer left in `folder` (finished files are left alone)."""
    for tmp in folder.glob(".*.tmp*"):
        tmp.unlink(missing_ok=True)


def safe_name(text: str, limit: int = 40, fallback: str = "run") -> str:
    """A name safe to use as one path component: letters, digits, dot, dash, underscore."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return cleaned[:limit] or fallback


def cache_home() -> Path:
    """Decoded-image cache: `STUDIO_CACHE`, default `./data/cache`."""
    return Path(os.environ.get("STUDIO_CACHE", os.path.join("data", "cache"))).absolute()
