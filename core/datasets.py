"""Datasets: where the photos come from, which can be used, and how they are split.

A dataset is a folder of class folders (`cats/`, `dogs/`), or a folder already split
into `train/`, `val/` (or `validation/`) and optionally `test/`, each holding class
folders; or a `.zip` of either; or the built-in demo set; or a sample set that Keras
downloads. `scan_dataset` reads every file once and says which will be used and why
the others will not; `make_splits` decides, from a seed, which file goes where.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import re
import shutil
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from core.images import ImageRejected, inspect_image, is_junk

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}

ZIP_MAX_FILES = 100_000
ZIP_MAX_BYTES = 8 * 1024**3
ZIP_MAX_RATIO = 200


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message says what to do."""


@dataclass(frozen=True)
class ImageItem:
    path: str
    label: str
    split: str  # "train", "val", "test", or "" when the dataset has no given split
    format: str
    width: int
    height: int
    copy_of: str = ""  # the path of an identical file found earlier (same bytes), if any


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class DatasetReport:
    """What a scan found: usable images per class and split, and every file left out."""

    root: str
    layout: str  # "classes" or "split"
    class_names: list[str]
    items: list[ImageItem]
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def given_splits(self) -> list[str]:
        return sorted({item.split for item in self.items if item.split}, key=SPLITS.index)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class, per split ("all" when the dataset has no given split)."""
        table: dict[str, dict[str, int]] = {}
        for item in self.items:
            row = table.setdefault(item.label, {})
            key = item.split or "all"
            row[key] = row.get(key, 0) + 1
        return {name: table.get(name, {}) for name in self.class_names}

    def class_totals(self) -> dict[str, int]:
        totals = Counter(item.label for item in self.items)
        return {name: totals.get(name, 0) for name in self.class_names}

    def formats(self) -> dict[str, int]:
        return dict(Counter(item.format for item in self.items).most_common())

    def size_summary(self) -> dict[str, int]:
        if not self.items:
            return {}
        widths = sorted(item.width for item in self.items)
        heights = sorted(item.height for item in self.items)
        middle = len(widths) // 2
        return {
            "min_width": widths[0],
            "median_width": widths[middle],
            "max_width": widths[-1],
            "min_height": heights[0],
            "median_height": heights[middle],
            "max_height": heights[-1],
        }

    def typical_side(self) -> int:
        """The median of the photos' shorter sides, in pixels (0 without photos)."""
        sides = sorted(min(item.width, item.height) for item in self.items)
        return sides[len(sides) // 2] if sides else 0

    def problems_for_training(self) -> list[str]:
        """Reasons this dataset cannot train a classifier; empty when it can."""
        problems = []
        if not self.items:
            problems.append(f"No usable images were found in {self.root}.")
        elif len(self.class_names) < 2:
            found = self.class_names[0] if self.class_names else "none"
            problems.append(
                f"A classifier needs at least 2 classes; this dataset has 1 ({found}). "
                "Put each class's photos in its own folder, side by side."
            )
        return problems

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "layout": self.layout,
            "class_names": self.class_names,
            "counts": self.counts(),
            "formats": self.formats(),
            "sizes": self.size_summary(),
            "skipped": [asdict(s) for s in self.skipped],
            "warnings": self.warnings,
            "items": [asdict(i) for i in self.items],
        }

    @classmethod
    def from_dict(cls, data: dict) -> DatasetReport:
        return cls(
            root=data["root"],
            layout=data["layout"],
            class_names=list(data["class_names"]),
            items=[ImageItem(**i) for i in data["items"]],
            skipped=[SkippedFile(**s) for s in data["skipped"]],
            warnings=list(data["warnings"]),
        )


def scan_dataset(root: str | os.PathLike, decode: bool = True, workers: int = 4) -> DatasetReport:
    """Find the classes and splits under `root` and check every file.

    Args:
        root: a folder of class folders, or of `train/`, `val/`, `test/` folders.
        decode: fully decode each image (finds truncated files); False reads headers only.
        workers: threads decoding in parallel (Pillow releases the GIL while decoding).

    Raises:
        DatasetError: when `root` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder. Choose a folder of class folders, or a .zip of one.")
    root = _unwrap_single_folder(root)
    split_dirs = _split_folders(root)
    layout = "split" if split_dirs else "classes"
    candidates: list[tuple[Path, str, str]] = []  # (file, class, split)
    skipped: list[SkippedFile] = []
    warnings: list[str] = []
    empty_classes: dict[str, set[str]] = {}

    sources = split_dirs.items() if split_dirs else [("", root)]
    for split, folder in sources:
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if is_junk(entry.name):
                continue
            if not _is_text(entry.name):
                skipped.append(SkippedFile(_printable(entry), NOT_TEXT_REASON))
                continue
            if entry.is_symlink() and not _inside(entry.resolve(), root.resolve()):
                skipped.append(SkippedFile(str(entry), "a link to somewhere outside the dataset"))
                continue
            if entry.is_file():
                skipped.append(SkippedFile(str(entry), "not inside a class folder"))
                continue
            if not entry.is_dir():
                continue
            files = list(_walk_files(entry, root, skipped))
            if not files:
                empty_classes.setdefault(entry.name, set()).add(split or "all")
            candidates.extend((f, entry.name, split) for f in files)

    def check(candidate: tuple[Path, str, str]):
        path, label, split = candidate
        try:
            info = inspect_image(path, decode=decode)
        except ImageRejected as error:
            return SkippedFile(str(path), str(error))
        return ImageItem(str(path), label, split, info.format, info.width, info.height)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(check, candidates))
    items = [r for r in results if isinstance(r, ImageItem)]
    skipped.extend(r for r in results if isinstance(r, SkippedFile))

    if layout == "split":
        train_classes = sorted({i.label for i in items if i.split == "train"})
        kept = []
        for item in items:
            if item.label in train_classes:
                kept.append(item)
            else:
                skipped.append(SkippedFile(item.path, f"class '{item.label}' has no training images"))
        items = kept
        class_names = train_classes
        for split in ("val", "test"):
            present = {i.label for i in items if i.split == split}
            missing = [c for c in class_names if c not in present] if present else []
            if missing:
                warnings.append(f"The {split} folder has no images of: {', '.join(missing)}.")
    else:
        class_names = sorted({i.label for i in items})
    for name in sorted(empty_classes):
        if name not in class_names:
            warnings.append(f"Class folder '{name}' has no usable images and is left out.")
    usable = Counter(i.label for i in items)
    for name in class_names:
        if usable[name] == 1:
            warnings.append(f"Class '{name}' has only 1 image: it can be trained on but not checked.")
    if len(usable) >= 2:
        most, least = max(usable.values()), min(usable.values())
        if most >= 5 * least:
            warnings.append(f"Classes are unbalanced ({most} vs {least} images); class weights will even them out.")
    items, copy_warnings = _mark_copies(items)
    warnings.extend(copy_warnings)
    return DatasetReport(str(root), layout, class_names, items, skipped, warnings)


@dataclass(frozen=True)
class SplitPlan:
    """Which file is in which split, decided once and recorded in the run."""

    class_names: list[str]
    train: list[ImageItem]
    val: list[ImageItem]
    test: list[ImageItem]
    notes: list[str]

    def rows(self) -> list[dict[str, str]]:
        return [
            {"split": name, "label": item.label, "path": item.path}
            for name, part in (("train", self.train), ("val", self.val), ("test", self.test))
            for item in part
        ]


def make_splits(report: DatasetReport, val_fraction: float, test_fraction: float, seed: int) -> SplitPlan:
    """Use the dataset's own splits where given; carve the missing ones from train, stratified.

    A dataset with `train/` and `val/` but no `test/` keeps `val/` as the untouched test
    set and takes the validation images (used to pick the best epoch) from `train/`, so
    the reported test accuracy was never used to choose anything.
    """
    notes: list[str] = []
    by_split: dict[str, list[ImageItem]] = {s: [] for s in ("", *SPLITS)}
    for item in report.items:
        by_split[item.split].append(item)
    if report.layout == "classes":
        train, val, test = _stratified(by_split[""], val_fraction, test_fraction, seed)
        notes.append(
            f"Split {len(report.items)} images by class: {len(train)} train, {len(val)} validation, "
            f"{len(test)} test (seed {seed})."
        )
    else:
        train, val, test = by_split["train"], by_split["val"], by_split["test"]
        if not test and val:
            test, val = val, []
            notes.append("No test folder: the validation folder is kept aside as the test set.")
        if not val:
            train, val, _ = _stratified(train, val_fraction, 0.0, seed)
            notes.append(f"Validation images ({len(val)}) taken from train, {val_fraction:.0%} of each class.")
    return SplitPlan(report.class_names, train, val, test, notes)


def _stratified(items, val_fraction, test_fraction, seed):
    """Per class, seeded; each exact copy goes where its original goes."""
    paths = {item.path for item in items}
    copies = [item for item in items if item.copy_of in paths]
    per_class: dict[str, list[ImageItem]] = {}
    for item in sorted(items, key=lambda i: i.path):
        if item.copy_of not in paths:
            per_class.setdefault(item.label, []).append(item)
    rng = random.Random(seed)
    train, val, test = [], [], []
    for label in sorted(per_class):
        group = per_class[label]
        rng.shuffle(group)
        n = len(group)
        n_test = round(n * test_fraction) if n >= 3 else 0
        n_val = round(n * val_fraction) if n >= 2 else 0
        if test_fraction and n >= 3:
            n_test = max(n_test, 1)
        if n >= 2:
            n_val = max(n_val, 1)
        n_test = min(n_test, max(n - n_val - 1, 0))
        test.extend(group[:n_test])
        val.extend(group[n_test : n_test + n_val])
        train.extend(group[n_test + n_val :])
    home = {item.path: part for part in (train, val, test) for item in part}
    for item in copies:
        home[item.copy_of].append(item)
    return train, val, test


def _split_folders(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.is_dir() and not is_junk(entry.name):
            split = _SPLIT_ALIASES.get(entry.name.lower())
            if split and split not in found:
                found[split] = entry
    return found if "train" in found else {}


def _unwrap_single_folder(root: Path) -> Path:
    """A zip often holds one folder that holds the dataset: look inside it."""
    for _ in range(3):
        entries = [e for e in root.iterdir() if not is_junk(e.name)]
        dirs = [e for e in entries if e.is_dir()]
        if len(entries) == 1 and len(dirs) == 1 and not _split_folders(root):
            inner = dirs[0]
            children = [e for e in inner.iterdir() if not is_junk(e.name)]
            if any(c.is_dir() for c in children):
                root = inner
                continue
        break
    return root


NOT_TEXT_REASON = "its name is not valid text (saved with an old character set?): rename it"


def _is_text(name: str) -> bool:
    """False for names whose bytes are not UTF-8 (Python keeps them as surrogates, which cannot be written out)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(path: Path) -> str:
    return os.fsencode(str(path)).decode("utf-8", errors="replace")


def _walk_files(folder: Path, root: Path, skipped: list[SkippedFile]):
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not is_junk(d))
        for name in sorted(filenames):
            if is_junk(name):
                continue
            path = Path(dirpath) / name
            if not _is_text(str(path)):
                skipped.append(SkippedFile(_printable(path), NOT_TEXT_REASON))
                continue
            if path.is_symlink():
                if not _inside(path.resolve(), root.resolve()):
                    skipped.append(SkippedFile(str(path), "a link to somewhere outside the dataset"))
                    continue
            yield path


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def _mark_copies(items: list[ImageItem]) -> tuple[list[ImageItem], list[str]]:
    """Find files with identical bytes (by size, then hash); mark each copy with its original.

    Copies across given splits inflate the test score, so they are warned about; with no
    given split, `make_splits` keeps each copy in its original's split.
    """
    by_size: dict[int, list[ImageItem]] = {}
    for item in items:
        try:
            by_size.setdefault(os.path.getsize(item.path), []).append(item)
        except OSError:
            continue
    original: dict[str, str] = {}
    for group in by_size.values():
        if len(group) < 2:
            continue
        first_by_hash: dict[str, str] = {}
        for item in sorted(group, key=lambda i: i.path):
            digest = hashlib.sha1(Path(item.path).read_bytes()).hexdigest()
            if digest in first_by_hash:
                original[item.path] = first_by_hash[digest]
            else:
                first_by_hash[digest] = item.path
    if not original:
        return items, []
    by_path = {item.path: item for item in items}
    marked = [replace(item, copy_of=original[item.path]) if item.path in original else item for item in items]
    warnings = []
    crossing = sum(1 for path, first in original.items() if by_path[path].split != by_path[first].split)
    if crossing:
        warnings.append(
            f"{crossing} image(s) appear in more than one split (identical files): "
            "the test score will look better than it is. Remove the copies."
        )
    elif not any(item.split for item in items):
        warnings.append(
            f"{len(original)} image(s) are exact copies of others. Each copy is kept in the same split as its "
            "original, so copies cannot inflate the test score."
        )
    relabelled = sum(1 for path, first in original.items() if by_path[path].label != by_path[first].label)
    if relabelled:
        warnings.append(f"{relabelled} identical image(s) are filed under different classes: check their labels.")
    return marked, warnings


# --- zips -----------------------------------------------------------------------------


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
        if len(members) > ZIP_MAX_FILES:
            raise DatasetError(f"{zip_path.name} holds {len(members)} entries; the limit is {ZIP_MAX_FILES}.")
        total = sum(m.file_size for m in members)
        if total > ZIP_MAX_BYTES:
            raise DatasetError(
                f"{zip_path.name} would unpack to {total / 1e9:.1f} GB; the limit is {ZIP_MAX_BYTES / 1e9:.0f} GB."
            )
        compressed = sum(m.compress_size for m in members) or 1
        if total > 10 * 1024**2 and total / compressed > ZIP_MAX_RATIO:
            raise DatasetError(
                f"{zip_path.name} unpacks to {total / compressed:.0f} times its size: it looks like a zip bomb "
                "and was not opened."
            )
        if any(m.flag_bits & 0x1 for m in members):
            raise DatasetError(f"{zip_path.name} is password-protected. Make a zip without a password.")
        target.mkdir(parents=True, exist_ok=True)
        resolved_target = target.resolve()
        written = 0
        for member in members:
            name = member.filename.replace("\\", "/")
            mode = member.external_attr >> 16
            if stat.S_ISLNK(mode):
                continue  # links inside an upload could point anywhere: never created
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
                raise DatasetError(f"{zip_path.name} contains an unsafe path ({member.filename!r}) and was not opened.")
            if not parts or any(is_junk(p) for p in parts):
                continue
            destination = resolved_target.joinpath(*(_short_component(p) for p in parts))
            if not _inside(destination.resolve(), resolved_target):
                raise DatasetError(f"{zip_path.name} contains an unsafe path ({member.filename!r}).")
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, open(destination, "wb") as sink:
                    copied = _copy_limited(source, sink, member.file_size)
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    raise DatasetError(
                        f"The disk is full: {zip_path.name} could not be unpacked. Free some space and try again."
                    ) from None
                raise DatasetError(
                    f"Could not unpack {member.filename!r} from {zip_path.name}: {error.strerror}."
                ) from None
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                raise DatasetError(
                    f"{zip_path.name} is damaged ({_first_line(error)}). Make a new .zip of the folder."
                ) from None
            written += copied
            if written > ZIP_MAX_BYTES:
                raise DatasetError(f"{zip_path.name} unpacked past the {ZIP_MAX_BYTES / 1e9:.0f} GB limit.")
    return target


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
    path = folder / _short_component(_slug(Path(name).stem, limit=80) + Path(name).suffix.lower())
    if path.exists():
        return path
    tmp = path.with_name(f".{path.name}.part")
    written = 0
    try:
        with open(tmp, "wb") as handle:
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
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        if error.errno == errno.ENOSPC:
            raise DatasetError(f"The server's disk is full, so {name} could not be stored. Free some space.") from None
        raise DatasetError(f"{name} could not be stored: {error.strerror}.") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
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


# --- sources --------------------------------------------------------------------------

SAMPLES = {
    "flowers": {
        "title": "Flower photos (5 classes, 3,670 photos, 220 MB)",
        "origin": "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
        "fname": "flower_photos",
    },
    "cats_vs_dogs": {
        "title": "Cats vs dogs (2 classes, 3,000 photos, 66 MB)",
        "origin": "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
        "fname": "cats_and_dogs_filtered",
    },
}


def data_home() -> Path:
    """Where the tool keeps extracted uploads and the demo set (`STUDIO_DATA`, default `./data`)."""
    return Path(os.environ.get("STUDIO_DATA", "data")).absolute()


def resolve_source(source: str) -> Path:
    """Turn a dataset choice into a folder on disk.

    `demo` builds the demo set, `sample:NAME` downloads through Keras, a `.zip` is
    extracted safely (once; later calls reuse it), and a folder is used as it is.

    Raises:
        DatasetError: the folder does not exist, a download failed, or the zip is refused.
    """
    if source == "demo":
        from core.demo_data import ensure_demo_dataset

        return ensure_demo_dataset(data_home() / "demo")
    if source.startswith("sample:"):
        return download_sample(source.split(":", 1)[1])
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"{source} does not exist. Check the path.")
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise DatasetError(f"{path.name} is a file, not a folder or a .zip. Choose a folder of class folders.")
        digest = _file_digest(path)
        target = data_home() / "extracted" / f"{_slug(path.stem)}-{digest[:12]}"
        done = target / ".extracted"
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            try:
                extract_zip(path, target)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            done.write_text(json.dumps({"zip": str(path)}))
        return target
    return path


def download_sample(name: str) -> Path:
    """Download and extract a sample set with Keras's own downloader (cached after once)."""
    if name not in SAMPLES:
        raise DatasetError(f"Unknown sample {name!r}. Choose one of: {', '.join(SAMPLES)}")
    sample = SAMPLES[name]
    import keras

    try:
        path = keras.utils.get_file(sample["fname"], origin=sample["origin"], extract=True)
    except Exception as error:  # Keras raises plain Exception for network failures
        raise DatasetError(
            f"Could not download the sample '{name}' ({_first_line(error)}). This machine may be offline: "
            f"download {sample['origin']} on a computer with internet and upload it as a .zip, "
            "or choose a folder of your own photos."
        ) from None
    return Path(path)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _slug(text: str, limit: int = 40) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:limit] or "dataset"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__
