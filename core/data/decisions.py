"""A person's decisions about photos (move to another class, leave out, add a photo without a label), kept
beside the dataset.

The person's own files are never moved, renamed or deleted: the decisions live in the app's
data folder (`decisions/<dataset key>.json`), one per photo, and every scan of the dataset
applies them, so the Data page's counts and the next run both see them. A decision can be
taken back one by one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from core.base.errors import InputError
from core.base.files import data_home, write_atomic


@dataclass(frozen=True)
class Decision:
    path: str  # the photo, relative to the dataset's folder; for "add", its full path in `unsorted_home()`
    action: str  # "move", "exclude" or "add"
    to: str = ""  # the class a moved or added photo now belongs to
    was: str = ""  # its class before
    at: float = 0.0


OLD_FOLDER = "overrides"  # where versions before 3 kept them: still read, moved on the next decision


def decisions_home() -> Path:
    """The folder of every dataset's decisions; its time changes with each decision (each file is replaced)."""
    return data_home() / "decisions"


def decisions_path(root: str | Path, home: Path | None = None) -> Path:
    """Where the decisions about the dataset in `root` are kept (named by the folder, never inside it)."""
    key = hashlib.sha1(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return (home or decisions_home()) / f"{key}.json"


def decisions_about(root: str | Path) -> dict[str, Decision]:
    """Every decision about the dataset, by photo (relative path)."""
    path = decisions_path(root)
    if not path.exists():
        path = decisions_path(root, data_home() / OLD_FOLDER)
    try:
        return {row["path"]: Decision(**row) for row in _rows(path)}
    except (KeyError, TypeError):
        return {}


def _rows(path: Path) -> list[dict]:
    """The decisions kept in one file, as written; none when it is missing or unreadable."""
    try:
        rows = json.loads(path.read_text())["decisions"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return rows if isinstance(rows, list) else []


def _save(root: str | Path, chosen: dict[str, Decision]) -> None:
    path = decisions_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"dataset": str(Path(root).resolve()), "decisions": [asdict(d) for d in chosen.values()]}
    write_atomic(path, json.dumps(body, indent=1))
    decisions_path(root, data_home() / OLD_FOLDER).unlink(missing_ok=True)  # read into `chosen` already


def unsorted_home() -> Path:
    """Where photos nobody has sorted yet are kept once uploaded (one folder per upload); only photos in here can
    be added to a dataset by a decision."""
    return data_home() / "unsorted"


UNSORTED_KEPT_FOR = 7 * 24 * 3600  # seconds an upload of photos without labels is kept when none of it was added


def prune_unsorted(keep: Path | None = None, older_than: float = UNSORTED_KEPT_FOR) -> int:
    """Delete the uploads of photos without labels (folders in `unsorted_home()`) that no decision adds a photo
    from, older than `older_than` seconds, except `keep`; links are never followed. Returns how many went."""
    home = unsorted_home()
    if not home.is_dir():
        return 0
    added = [
        Path(row["path"])
        for file in decisions_home().glob("*.json")
        for row in _rows(file)
        if isinstance(row, dict) and row.get("action") == "add" and isinstance(row.get("path"), str)
    ]
    removed, now = 0, time.time()
    for folder in home.iterdir():
        if folder.is_symlink() or not folder.is_dir() or (keep is not None and folder == keep):
            continue
        inside = folder.resolve()
        if any(path.is_relative_to(inside) for path in added) or now - folder.stat().st_mtime < older_than:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def decide(root: str | Path, photo: str, action: str, was: str, to: str = "") -> Decision:
    """Record that `photo` (a path inside `root`) moves to class `to`, or is left out ("exclude"); or that an unsorted
    photo (a path inside `unsorted_home()`) joins the dataset as class `to` ("add")."""
    if action not in ("move", "exclude", "add"):
        raise InputError(f"Unknown decision {action!r}: move, exclude or add.")
    relative = _added(photo) if action == "add" else _relative(root, photo)
    chosen = decisions_about(root)
    if action == "add":
        chosen[relative] = Decision(relative, "add", to, "", time.time())
        _save(root, chosen)
        return chosen[relative]
    if action == "move" and (not to or to == was):
        chosen.pop(relative, None)  # moved back where it was: no decision left
        _save(root, chosen)
        return Decision(relative, "keep", was=was)
    chosen[relative] = Decision(relative, action, to if action == "move" else "", was, time.time())
    _save(root, chosen)
    return chosen[relative]


def _added(photo: str) -> str:
    """An unsorted photo's key: its full path, which must lie in `unsorted_home()`."""
    resolved = Path(photo).resolve()
    if not resolved.is_relative_to(unsorted_home().resolve()):
        raise InputError("Only photos uploaded as photos without labels can be added to a dataset.")
    return str(resolved)


def _key(root: str | Path, photo: str) -> str:
    return _added(photo) if Path(photo).resolve().is_relative_to(unsorted_home().resolve()) else _relative(root, photo)


def decision_for(root: str | Path, photo: str) -> Decision | None:
    """The decision about one photo, if any."""
    return decisions_about(root).get(_key(root, photo))


def undo(root: str | Path, photo: str) -> None:
    """Take back the decision about one photo (moved, left out, or added)."""
    chosen = decisions_about(root)
    if chosen.pop(_key(root, photo), None) is not None:
        _save(root, chosen)


def summary(root: str | Path) -> str:
    """The decisions in words ("12 photos moved to another class, 3 left out"), or "" when there are none."""
    chosen = decisions_about(root).values()
    moved = sum(d.action == "move" for d in chosen)
    excluded = sum(d.action == "exclude" for d in chosen)
    added = sum(d.action == "add" for d in chosen)
    parts = []
    if moved:
        parts.append(f"{moved} photo{'s' * (moved != 1)} moved to another class")
    if excluded:
        parts.append(f"{excluded} left out")
    if added:
        parts.append(f"{added} photo{'s' * (added != 1)} without labels added")
    return ", ".join(parts)


def apply(report, make_item: Callable[..., Any]):
    """`report` (a DatasetReport) with the decisions applied: moved photos relabelled (to a class the dataset
    has), left-out photos listed as skipped with the reason, accepted photos without labels added (made by `make_item`,
    the scan's record of a photo). The report records what it used."""
    from core.data.images import SkippedFile

    chosen = decisions_about(report.root)
    if not chosen:
        return report
    items: list[Any] = []
    skipped, used = list(report.skipped), []
    given_split = any(item.split for item in report.items)
    for item in report.items:
        decision = chosen.get(_relative(report.root, item.path))
        if decision is None:
            items.append(item)
        elif decision.action == "exclude":
            skipped.append(SkippedFile(item.path, "left out in the photo review"))
            used.append(decision)
        elif decision.to in report.class_names:
            items.append(replace(item, label=decision.to))
            used.append(decision)
        else:
            items.append(item)
    for accepted in chosen.values():  # photos without labels the person accepted into a class, after the others
        if accepted.action == "add" and accepted.to in report.class_names and Path(accepted.path).is_file():
            added = _added_item(accepted, "train" if given_split else "", make_item)
            (skipped if isinstance(added, SkippedFile) else items).append(added)
            used.append(accepted)
    return replace(report, items=items, skipped=skipped, decisions=[asdict(d) for d in used])


def _added_item(decision: Decision, split: str, make_item: Callable[..., Any]):
    """An accepted photo as the scan lists a photo (`make_item`: the scan's record type), or why it cannot be used."""
    from core.data.images import ImageRejected, SkippedFile, inspect_image

    try:
        info = inspect_image(decision.path, decode=False)
    except ImageRejected as error:
        return SkippedFile(decision.path, str(error))
    return make_item(decision.path, decision.to, split, info.format, info.width, info.height)


def _relative(root: str | Path, photo: str) -> str:
    try:
        return str(Path(photo).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        raise InputError("That photo is not part of this dataset.") from None


KEEP, EXCLUDE, MOVE = "keep", "exclude", "move:"


def choices(class_names: list[str], label: str) -> list[str]:
    """The decisions a person can make about a photo labelled `label`: keep it, move it to each other class
    (`move:CLASS`), or leave it out."""
    return [KEEP] + [MOVE + name for name in class_names if name != label] + [EXCLUDE]


def choice_of(decision: Decision | None) -> str:
    """The choice a recorded decision stands for (KEEP when there is none)."""
    if decision is None:
        return KEEP
    return MOVE + decision.to if decision.action == "move" else EXCLUDE


def choice_words(choice: str, label: str) -> str:
    """A choice in words: "Keep as cat", "Move to dog", "Leave out"."""
    if choice == KEEP:
        return f"Keep as {label}"
    return "Leave out" if choice == EXCLUDE else f"Move to {choice.removeprefix(MOVE)}"


def apply_choice(root: str | Path, photo: str, label: str, choice: str) -> Decision | None:
    """Record `choice` about `photo` (labelled `label`): undo any decision, leave it out, or move it."""
    if choice == KEEP:
        undo(root, photo)
        return None
    if choice == EXCLUDE:
        return decide(root, photo, "exclude", was=label)
    if not choice.startswith(MOVE):
        raise InputError(f"Unknown decision {choice!r}.")
    return decide(root, photo, "move", was=label, to=choice.removeprefix(MOVE))
