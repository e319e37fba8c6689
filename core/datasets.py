"""Datasets: where the photos come from, which can be used, and how they are split.

A dataset is a folder of class folders (`cats/`, `dogs/`), or a folder already split
into `train/`, `val/` (or `validation/`) and optionally `test/`, each holding class
folders; or a `.zip` of either; or the built-in demo set; or a sample set that Keras
downloads. `scan_dataset` reads every file once and says which will be used and why
the others will not; `make_splits` decides, from a seed, which file goes where.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import stat
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
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
    warnings.extend(_duplicate_warnings(items))
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
    per_class: dict[str, list[ImageItem]] = {}
    for item in sorted(items, key=lambda i: i.path):
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


def _walk_files(folder: Path, root: Path, skipped: list[SkippedFile]):
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not is_junk(d))
        for name in sorted(filenames):
            if is_junk(name):
                continue
            path = Path(dirpath) / name
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


def _duplicate_warnings(items: list[ImageItem]) -> list[str]:
    """Exact duplicates across splits inflate the test score: find them by content hash."""
    if not any(i.split for i in items):
        return []
    by_size: dict[int, list[ImageItem]] = {}
    for item in items:
        try:
            by_size.setdefault(os.path.getsize(item.path), []).append(item)
        except OSError:
            continue
    by_hash: dict[str, set[str]] = {}
    for group in by_size.values():
        if len({i.split for i in group}) < 2:
            continue
        for item in group:
            digest = hashlib.sha1(Path(item.path).read_bytes()).hexdigest()
            by_hash.setdefault(digest, set()).add(item.split)
    crossing = sum(1 for splits in by_hash.values() if len(splits) > 1)
    if crossing:
        return [
            f"{crossing} image(s) appear in more than one split (identical files): "
            "the test score will look better than it is. Remove the copies."
        ]
    return []


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
            destination = resolved_target.joinpath(*parts)
            if not _inside(destination.resolve(), resolved_target):
                raise DatasetError(f"{zip_path.name} contains an unsafe path ({member.filename!r}).")
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(destination, "wb") as sink:
                copied = _copy_limited(source, sink, member.file_size)
            written += copied
            if written > ZIP_MAX_BYTES:
                raise DatasetError(f"{zip_path.name} unpacked past the {ZIP_MAX_BYTES / 1e9:.0f} GB limit.")
    return target


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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:40] or "dataset"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:160] if text else type(error).__name__
