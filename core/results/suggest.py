"""Suggested classes for photos nobody has sorted yet, from a run's kept model.

Each photo gets the model's class and how sure it is, and is said to look unlike every class when
its features sit further from every class's centre than the run's calibrated limit
(`core.training.calibration`). Within each suggested class the least certain come first: those
are the ones worth a person's look, while the sure ones can be accepted together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_PHOTOS = 5000  # photos suggested at once (a folder is read in this order, by name)
BATCH = 64


@dataclass(frozen=True)
class Suggestion:
    """One unsorted photo: the class the model suggests, how sure it is, and whether it looks unlike every class
    (`error`: why the photo could not be read, with the other fields empty)."""

    path: str
    suggested: str = ""
    confidence: float = 0.0
    unlike_all: bool = False
    error: str = ""


def photos_in(folder: str | Path) -> list[str]:
    """The photos under `folder` (any depth, by name), at most MAX_PHOTOS; links are not followed out of it.

    Raises:
        InputError: `folder` is not a folder, or holds no photo.
    """
    from core.base.errors import InputError
    from core.data.images import IMAGE_EXTENSIONS

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{folder} is not a folder of photos.")
    inside = root.resolve()
    found = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file() and path.resolve().is_relative_to(inside):
            found.append(str(path))
            if len(found) >= MAX_PHOTOS:
                break
    if not found:
        raise InputError(f"{folder} holds no photos ({', '.join(sorted(IMAGE_EXTENSIONS))}).")
    return found


def suggest_labels(run, paths: list[str]) -> list[Suggestion]:
    """A suggestion for each photo of `paths` from `run`'s kept model, grouped by suggested class (the run's class
    order), the least certain first within each; photos that cannot be read last, with the reason.

    Raises:
        InputError: the run has no model yet.
    """
    from core.base.errors import InputError
    from core.base.tasks import read_result
    from core.data.images import ImageRejected, read_photo
    from core.network.inference import load_model, quiet_tensorflow
    from core.training.calibration import features_of, unfamiliar

    if not run.model_path.exists():
        raise InputError(f"{run.id} has no model yet: it has to finish first.")
    names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
    quiet_tensorflow()
    model = load_model(run.model_path)
    calibration = read_result(run.calibration_path)
    size = run.image_size()
    answered: list[Suggestion] = []
    unread: list[Suggestion] = []
    for start in range(0, len(paths), BATCH):
        photos, kept = [], []
        for path in paths[start : start + BATCH]:
            try:
                photos.append(read_photo(path, size))
                kept.append(path)
            except ImageRejected as error:
                unread.append(Suggestion(path, error=str(error)))
        if not kept:
            continue
        features, probabilities = features_of(model, np.stack(photos))
        beyond = unfamiliar(features, calibration)[1] if calibration else np.zeros(len(kept), bool)
        for path, answer, odd in zip(kept, probabilities, beyond, strict=True):
            best = int(answer.argmax())
            answered.append(Suggestion(path, names[best], round(float(answer[best]), 4), bool(odd)))
    answered.sort(key=lambda s: (names.index(s.suggested), s.confidence))
    return answered + unread
