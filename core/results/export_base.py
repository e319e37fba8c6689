"""What every export starts from and ends with: the kept model as inference sees it, the photos each format
is checked on and the Keras model's answers on them, and the record of a check (`Verification`)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.base.errors import InputError
from core.network.inference import inference_model, load_model, quiet_tensorflow

MAX_CHECK_PHOTOS = 400
MAX_AGREEMENT_LOSS = 0.01  # a format may disagree with Keras on at most 1% of the photos
MAX_INT8_ACCURACY_LOSS = 0.01  # int8 may lose at most 1 point of accuracy


class ExportError(InputError):
    """An export that cannot be made here; the message says why and what to do."""


@dataclass
class Verification:
    """How an exported file did in its own runtime, on the run's test photos."""

    format: str
    title: str
    runtime: str
    passed: bool
    agreement: float  # share of photos where its top class is the Keras model's
    accuracy: float
    keras_accuracy: float
    photos: int
    size_bytes: int
    latency_ms: float  # one photo at a time, on this machine
    details: dict
    message: str


def check_photos(run) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The run's test photos (else validation, else training) at its image size, with their class indices."""
    from core.data.images import load_rgb

    class_names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
    rows = run.splits()
    for split in ("test", "val", "train"):
        chosen = [(label, path) for s, label, path in rows if s == split][:MAX_CHECK_PHOTOS]
        if chosen:
            break
    size = run.image_size()
    pixels = np.stack([load_rgb(path, size) for _, path in chosen]).astype(np.float32)
    return pixels, np.array([class_names.index(label) for label, _ in chosen]), class_names


class ExportSource:
    """The kept model as every format starts from it, loaded once however many formats are made:
    the inference model, the check photos and the Keras model's answers on them, and (made on
    first need) a SavedModel at the run's fixed size, which three converters start from."""

    def __init__(self, run):
        if not run.model_path.exists():
            raise ExportError(f"Run {run.id} has no model yet: it has to finish (or be stopped after an epoch) first.")
        quiet_tensorflow()
        self.run, self.size = run, run.image_size()
        self.model = inference_model(load_model(run.model_path))
        self.pixels, self.labels, self.class_names = check_photos(run)
        self.reference = self.model.predict(self.pixels, batch_size=32, verbose=0)
        self.fixed_signature: Path | None = None

    def fixed_saved_model(self) -> Path:
        if self.fixed_signature is None:
            self.fixed_signature = self.run.path / "exports" / f".fixed-size-{os.getpid()}"
            shutil.rmtree(self.fixed_signature, ignore_errors=True)
            self.model.export(
                str(self.fixed_signature),
                format="tf_saved_model",
                input_signature=fixed_signature(self.size),
                verbose=False,
            )
        return self.fixed_signature

    def close(self) -> None:
        if self.fixed_signature is not None:
            shutil.rmtree(self.fixed_signature, ignore_errors=True)


def fixed_signature(size: int):
    import keras

    return [keras.InputSpec(shape=(None, size, size, 3), dtype="float32")]
