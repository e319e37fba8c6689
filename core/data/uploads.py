"""What arrives from outside: zips of photos and uploaded files, taken in safely.

Names inside a zip are untrusted: entries that would land outside the target (`../`,
absolute paths), links, password-protected and damaged archives, and archives that
unpack to too many files or bytes (zip bombs) are refused before anything is written.
Uploads are streamed to disk in chunks with their size checked again on the server. Photos
given to a model to try are checked before anything is written, counted against an hourly
quota per read-only link, and removed once their answers are shown.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import shutil
import stat
import threading
import time
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from core.base.errors import first_line
from core.base.files import atomic_path, data_home, safe_name, write_atomic
from core.data.datasets import DatasetError, inside
from core.data.images import is_junk

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


# --- Photos given to a model to try ---------------------------------------------------------------

TRY_MAX_BYTES = 20 * 1024 * 1024  # a phone's photo is 2 to 12 MB
TRY_PER_PICK = 12
TRY_QUOTA_PHOTOS = 100  # each read-only link, per hour
TRY_QUOTA_BYTES = 300 * 1024 * 1024
TRY_KEEP_SECONDS = 3600  # a tried photo left behind (a closed tab) is removed after this


@dataclass(frozen=True)
class TriedPhoto:
    """One photo given to try: where it is kept while its answer is shown, or why it was refused."""

    name: str
    path: str | None
    refusal: str | None = None


class UploadQuota:
    """What one key (a read-only link) may send in an hour, counted in the server process."""

    def __init__(self, photos: int = TRY_QUOTA_PHOTOS, size: int = TRY_QUOTA_BYTES, clock=time.monotonic):
        self.photos, self.size, self.clock = photos, size, clock
        self._lock = threading.Lock()
        self._taken: dict[str, list[tuple[float, int]]] = {}

    def take(self, key: str, size: int) -> bool:
        """Count a photo of `size` bytes against `key`, or say False when the hour's allowance is spent."""
        with self._lock:
            now = self.clock()
            taken = [(when, n) for when, n in self._taken.get(key, []) if when > now - 3600]
            if len(taken) >= self.photos or sum(n for _, n in taken) + size > self.size:
                self._taken[key] = taken
                return False
            self._taken[key] = [*taken, (now, size)]
            return True


QUOTA = UploadQuota()


def tried_photos_home() -> Path:
    return data_home() / "uploads" / "predict"


def keep_tried_photos(
    files: list[tuple[str, bytes]], space: str, quota_key: str | None = None, quota: UploadQuota | None = None
) -> list[TriedPhoto]:
    """Photos to try, each checked before a byte is written: size, the link's hourly quota, a readable photo.

    Accepted ones are written under `space` (this tab's folder), named by their content; refused ones
    are never written. The caller removes them with `forget_tried_photos` once their answers are shown.
    """
    quota = quota or QUOTA
    folder = tried_photos_home() / safe_name(space, limit=40)
    kept = []
    for name, data in files[:TRY_PER_PICK]:
        name = Path(name).name[:120] or "photo"
        if len(data) > TRY_MAX_BYTES:
            kept.append(TriedPhoto(name, None, f"larger than {TRY_MAX_BYTES // 2**20} MB, so it was not kept"))
            continue
        if quota_key is not None and not quota.take(quota_key, len(data)):
            kept.append(
                TriedPhoto(name, None, "this link has tried as many photos as it may in an hour; try again later")
            )
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(data)) as image:
                    image.verify()  # the header and structure, without decoding every pixel
        except Image.DecompressionBombError:
            kept.append(TriedPhoto(name, None, "too large to decode safely, so it was not kept"))
            continue
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            kept.append(TriedPhoto(name, None, "not a photo this tool can read, so it was not kept"))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha1(data).hexdigest()[:16]}{Path(name).suffix.lower()[:6] or '.jpg'}"
        if not path.exists():
            write_atomic(path, data, durable=False)
        kept.append(TriedPhoto(name, str(path)))
    return kept


def forget_tried_photos(photos: list[TriedPhoto]) -> None:
    """Remove tried photos once their answers are shown, and any left behind for over an hour by anyone."""
    for photo in photos:
        if photo.path:
            Path(photo.path).unlink(missing_ok=True)
    home = tried_photos_home()
    if not home.is_dir():
        return
    now = time.time()
    for old in home.rglob("*"):
        with contextlib.suppress(OSError):
            if old.is_file() and now - old.stat().st_mtime > TRY_KEEP_SECONDS:
                old.unlink()
    for folder in home.iterdir():
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
