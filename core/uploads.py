"""What arrives from outside: zips of photos and uploaded files, taken in safely.

Names inside a zip are untrusted: entries that would land outside the target (`../`,
absolute paths), links, password-protected and damaged archives, and archives that
unpack to too many files or bytes (zip bombs) are refused before anything is written.
Uploads are streamed to disk in chunks with their size checked again on the server.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from core.datasets import DatasetError, inside
from core.errors import first_line
from core.files import atomic_path, safe_name
from core.images import is_junk

ZIP_MAX_FILES = 100_000
ZIP_MAX_BYTES = 8 * 1024**3
ZIP_MAX_RATIO = 200


def extract_zip(zip_path: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract a zip of photos safely into `target` and return it.

    Entries that would land outside `target` (`../`, absolute paths), links, and
    archives that unpack to too many files or bytes (zip bombs) are refused before
    anything is written. Nested zips are left as files (and later skipped as non-images).

    Raises:
        DatasetError: a damaged, encrypted or hostile zip, with what to do.
    """
    zip_path, target = Path(zip_path), Path(target)
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise DatasetError(
            f"{zip_path.name} is not a zip file (or it is damaged). Make a new .zip of the folder."
        ) from None
    except OSError as error:
        raise DatasetError(f"Could not open {zip_path.name}: {error.strerror}") from None
    with archive:
        members = archive.infolist()
        _refuse_hostile(zip_path.name, members)
        target.mkdir(parents=True, exist_ok=True)
        resolved_target = target.resolve()
        written = 0
        for member in members:
            destination = _destination(zip_path.name, member, resolved_target)
            if destination is None:
                continue
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            written += _unpack(archive, member, destination, zip_path.name)
            if written > ZIP_MAX_BYTES:
                raise DatasetError(f"{zip_path.name} unpacked past the {ZIP_MAX_BYTES / 1e9:.0f} GB limit.")
    return target


def _refuse_hostile(name: str, members: list[zipfile.ZipInfo]) -> None:
    """Too many entries, too many bytes, a bomb's compression ratio, or a password: refused before writing."""
    if len(members) > ZIP_MAX_FILES:
        raise DatasetError(f"{name} holds {len(members)} entries; the limit is {ZIP_MAX_FILES}.")
    total = sum(m.file_size for m in members)
    if total > ZIP_MAX_BYTES:
        raise DatasetError(f"{name} would unpack to {total / 1e9:.1f} GB; the limit is {ZIP_MAX_BYTES / 1e9:.0f} GB.")
    compressed = sum(m.compress_size for m in members) or 1
    if total > 10 * 1024**2 and total / compressed > ZIP_MAX_RATIO:
        raise DatasetError(
            f"{name} unpacks to {total / compressed:.0f} times its size: it looks like a zip bomb and was not opened."
        )
    if any(m.flag_bits & 0x1 for m in members):
        raise DatasetError(f"{name} is password-protected. Make a zip without a password.")


def _destination(name: str, member: zipfile.ZipInfo, target: Path) -> Path | None:
    """Where `member` goes under `target`; None for links and OS litter, which are skipped.

    Raises:
        DatasetError: a path that would leave `target`.
    """
    entry = member.filename.replace("\\", "/")
    if stat.S_ISLNK(member.external_attr >> 16):
        return None  # links inside an upload could point anywhere: never created
    parts = [p for p in entry.split("/") if p not in ("", ".")]
    if entry.startswith("/") or re.match(r"^[A-Za-z]:", entry) or ".." in parts:
        raise DatasetError(f"{name} contains an unsafe path ({member.filename!r}) and was not opened.")
    if not parts or any(is_junk(p) for p in parts):
        return None
    destination = target.joinpath(*(_short_component(p) for p in parts))
    if not inside(destination.resolve(), target):
        raise DatasetError(f"{name} contains an unsafe path ({member.filename!r}).")
    return destination


def _unpack(archive: zipfile.ZipFile, member: zipfile.ZipInfo, destination: Path, name: str) -> int:
    """Write one file; returns the bytes written. Raises DatasetError for a full disk or a damaged entry."""
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as source, open(destination, "wb") as sink:
            return _copy_limited(source, sink, member.file_size)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise DatasetError(
                f"The disk is full: {name} could not be unpacked. Free some space and try again."
            ) from None
        raise DatasetError(f"Could not unpack {member.filename!r} from {name}: {error.strerror}.") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise DatasetError(f"{name} is damaged ({first_line(error)}). Make a new .zip of the folder.") from None


def _short_component(part: str, limit: int = 200) -> str:
    """A path component short enough for any file system (most allow 255 bytes), kept unique by a hash."""
    if len(part.encode()) <= limit:
        return part
    stem, suffix = os.path.splitext(part)
    suffix = suffix if len(suffix.encode()) <= 16 else ""
    tag = hashlib.sha1(part.encode()).hexdigest()[:10]
    head = stem.encode()[: limit - len(suffix.encode()) - 12].decode(errors="ignore")
    return f"{head}-{tag}{suffix}"


def store_upload(read: Callable[[int], bytes], name: str, folder: str | os.PathLike, max_bytes: int) -> Path:
    """Stream an uploaded file to `folder` in chunks and return its path.

    The file is written beside its final name and renamed when complete, so a broken
    upload never looks finished. The size limit is checked again here (the browser's
    limit can be bypassed), and so is the free space on the disk.

    Raises:
        DatasetError: too large, the disk is full, or the file could not be written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _short_component(
        safe_name(Path(name).stem, limit=80, fallback="upload") + Path(name).suffix.lower()
    )
    if path.exists():
        return path
    written = 0
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            for chunk in iter(lambda: read(8 * 1024 * 1024), b""):
                written += len(chunk)
                if written > max_bytes:
                    raise DatasetError(
                        f"{name} is larger than the {max_bytes / 1e6:,.0f} MB upload limit. "
                        "Upload fewer or smaller photos, or put the folder on the server."
                    )
                if shutil.disk_usage(folder).free < len(chunk) + 64 * 1024**2:
                    raise OSError(errno.ENOSPC, "No space left on device")
                handle.write(chunk)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise DatasetError(f"The server's disk is full, so {name} could not be stored. Free some space.") from None
        raise DatasetError(f"{name} could not be stored: {error.strerror}.") from None
    return path


def _copy_limited(source, sink, declared: int) -> int:
    """Copy at most the declared size (a lying header cannot make us write more)."""
    copied = 0
    while True:
        chunk = source.read(1024 * 1024)
        if not chunk:
            return copied
        copied += len(chunk)
        if copied > declared:
            raise DatasetError("A file in the zip is larger than its header says: the zip is damaged or hostile.")
        sink.write(chunk)
