"""Datasets: where the photos come from, which can be used, and how they are split.

A dataset is a folder of class folders (`cats/`, `dogs/`), or a folder already split
into `train/`, `val/` (or `validation/`) and optionally `test/`, each holding class
folders; or a `.zip` of either; or the built-in demo set; or a sample set that Keras
downloads. `scan_dataset` reads every file once and says which will be used and why
the others will not; `make_splits` decides, from a seed, which file goes where."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from core.base.errors import InputError
from core.data import decisions
from core.data.images import ImageRejected, SkippedFile, inspect_image, is_junk

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


class DatasetError(InputError):
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


@dataclass
class DatasetReport:
    """What a scan found: usable images per class and split, and every file left out."""

    root: str
    layout: str  # "classes" or "split"
    class_names: list[str]
    items: list[ImageItem]
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)  # the photo review's decisions applied (core.data.decisions)

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

    def relative(self, path: str) -> str:
        """A file's name within the dataset (never the server's full path)."""
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return Path(path).name

    def problems_for_training(self) -> list[str]:
        """Reasons this dataset cannot train a classifier; empty when it can."""
        problems = []
        if not self.items:
            problems.append(f"No usable images were found in {Path(self.root).name or 'the chosen folder'}.")
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
            "decisions": self.decisions,
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
            decisions=list(data.get("decisions", data.get("overrides", []))),  # its name before version 3
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
    skipped: list[SkippedFile] = []
    candidates, empty_classes = _candidates(root, split_dirs, skipped)

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
    warnings: list[str] = []
    if split_dirs:
        class_names = sorted({i.label for i in items if i.split == "train"})
        skipped.extend(
            SkippedFile(i.path, f"class '{i.label}' has no training images")
            for i in items
            if i.label not in class_names
        )
        items = [i for i in items if i.label in class_names]
        for split in ("val", "test"):
            present = {i.label for i in items if i.split == split}
            missing = [c for c in class_names if c not in present] if present else []
            if missing:
                warnings.append(f"The {split} folder has no images of: {', '.join(missing)}.")
    else:
        class_names = sorted({i.label for i in items})
    warnings += [
        f"Class folder '{n}' has no usable images and is left out." for n in sorted(empty_classes - set(class_names))
    ]
    warnings += _balance_warnings(items, class_names)
    items, copy_warnings = _mark_copies(items)
    report = DatasetReport(
        str(root), "split" if split_dirs else "classes", class_names, items, skipped, warnings + copy_warnings
    )
    return decisions.apply(report, ImageItem)  # the photo review's decisions, kept beside the dataset


def _candidates(root: Path, split_dirs: dict[str, Path], skipped: list[SkippedFile]):
    """Every file in a class folder as (file, class, split), and the class folders that hold none.

    Files outside class folders, links out of the dataset and names that are not text
    are added to `skipped` with the reason.
    """
    candidates: list[tuple[Path, str, str]] = []
    empty: set[str] = set()
    for split, folder in split_dirs.items() if split_dirs else [("", root)]:
        for entry in sorted(folder.iterdir(), key=lambda p: p.name):
            if is_junk(entry.name):
                continue
            if not _is_text(entry.name):
                skipped.append(SkippedFile(_printable(entry), NOT_TEXT_REASON))
            elif entry.is_symlink() and not inside(entry.resolve(), root.resolve()):
                skipped.append(SkippedFile(str(entry), "a link to somewhere outside the dataset"))
            elif entry.is_file():
                skipped.append(SkippedFile(str(entry), "not inside a class folder"))
            elif entry.is_dir():
                files = list(_walk_files(entry, root, skipped))
                if not files:
                    empty.add(entry.name)
                candidates.extend((f, entry.name, split) for f in files)
    return candidates, empty


def _balance_warnings(items: list[ImageItem], class_names: list[str]) -> list[str]:
    usable = Counter(i.label for i in items)
    warnings = [
        f"Class '{name}' has only 1 image: it can be trained on but not checked."
        for name in class_names
        if usable[name] == 1
    ]
    if len(usable) >= 2:
        most, least = max(usable.values()), min(usable.values())
        if most >= 5 * least:
            warnings.append(f"Classes are unbalanced ({most} vs {least} images); class weights will even them out.")
    return warnings


def with_separate_splits(report: DatasetReport, extras: dict[str, DatasetReport]) -> DatasetReport:
    """`report` as the training photos, with separately given validation or test folders added.

    A class those folders have and the training photos do not is left out with the reason.
    """
    if not extras:
        return report
    items = [i for i in report.items if i.split == "train"] if report.layout == "split" else report.items
    items = [replace(i, split="train") for i in items]
    skipped = list(report.skipped)
    for split, extra in extras.items():
        for item in extra.items:
            if item.label in report.class_names:
                items.append(replace(item, split=split))
            else:
                skipped.append(SkippedFile(item.path, f"class '{item.label}' has no training images"))
        skipped.extend(extra.skipped)
    return replace(report, layout="split", items=items, skipped=skipped)


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
                if not inside(path.resolve(), root.resolve()):
                    skipped.append(SkippedFile(str(path), "a link to somewhere outside the dataset"))
                    continue
            yield path


def inside(path: Path, root: Path) -> bool:
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
