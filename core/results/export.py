"""Take the model anywhere: each format made from the kept model, then checked in the runtime that loads it.

Every export starts from the *inference* graph: the classifier without its augmentation layers
(random ops are not TFLite ops) and with every layer called in inference mode, so no format can
carry training-time behaviour. Each file is then loaded in its own runtime (SavedModel with
`tf.saved_model.load`, LiteRT with `ai_edge_litert`, ONNX with `onnxruntime`, TF.js with
`@tensorflow/tfjs` in Node) and run on the run's test photos: its top-1 agreement with the Keras
model, its accuracy, its size and its time per photo are stored with it. A format that disagrees
on more than 1% of the photos (int8: accuracy more than 1 point below the Keras model's) is
failed, and is never offered as a download.

Layout: `exports/<format>/` holds the files, `MODEL_CARD.md` and `verification.json`;
`exports/<format>.zip` is the download, made only for a passed check.
"""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from core.base.files import atomic_path, write_atomic
from core.network.inference import quiet_tensorflow
from core.results.export_base import MAX_AGREEMENT_LOSS, MAX_INT8_ACCURACY_LOSS, ExportError, ExportSource, Verification
from core.results.formats import format_of
from core.results.model_card import model_card


def export_folder(run, key: str) -> Path:
    return run.path / "exports" / key


def existing(run, key: str) -> Verification | None:
    """The verification of an export already made from this run's current model, if any."""
    path = export_folder(run, key) / "verification.json"
    try:
        if path.stat().st_mtime < run.model_path.stat().st_mtime:
            return None  # made from an earlier model (the run was resumed since)
        return Verification(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def progress_path(run, key: str) -> Path:
    """The line saying what an export under way is doing, for the page to show."""
    return run.path / "exports" / f"{key}.progress"


def zip_path(run, key: str) -> Path:
    return run.path / "exports" / f"{key}.zip"


def photos_missing(run) -> str | None:
    """Why exports of `run` cannot be checked here (its photos are not on this machine), or None."""
    try:
        rows = run.splits()
    except OSError:
        rows = []
    if not any(Path(path).is_file() for _, _, path in rows[:50]):
        return (
            "Each format is checked on this run's own photos, and they are not on this server (the run was "
            "opened from a file, or its photos were moved). Its Keras model is in “Keep this run as a file”; "
            "other formats can be made where its photos are."
        )
    return None


def export_run(
    run, key: str, progress: Callable[[str], None] = print, source: ExportSource | None = None
) -> Verification:
    """Make format `key` of `run`'s kept model, check it in its runtime, and (if it passes) zip it with its card."""
    fmt = format_of(key)
    own = source is None
    source = source or ExportSource(run)
    try:
        folder = export_folder(run, key)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        zip_path(run, key).unlink(missing_ok=True)
        progress(f"Making the {fmt.title} file")
        details = fmt.write(source, folder / fmt.main, progress)
        progress(f"Checking it with {fmt.runtime} on {len(source.pixels)} photos")
        predict = fmt.load(folder / fmt.main, source.size)
        pixels = source.pixels
        probabilities = np.concatenate([predict(pixels[i : i + 32]) for i in range(0, len(pixels), 32)])
        latency = getattr(predict, "latency_ms", None) or _latency(predict, pixels)
        verification = _judge(fmt, source.reference, probabilities, source.labels, folder / fmt.main, latency, details)
        write_atomic(folder / "verification.json", json.dumps(asdict(verification), indent=1))
        write_atomic(folder / "MODEL_CARD.md", model_card(run, fmt, verification, source.class_names, source.size))
        if verification.passed:
            _zip(folder, zip_path(run, key))
        return verification
    finally:
        if own:
            source.close()


def export_many(run, keys: list[str], progress: Callable[[str], None] = print) -> list[Verification]:
    """Several formats from one loading of the model (the CLI's `--format all`); those already made are read back."""
    for key in keys:
        format_of(key)
    done = {key: existing(run, key) for key in keys}
    if all(done.values()):
        return [verification for verification in done.values() if verification is not None]
    source = ExportSource(run)
    try:
        return [done[key] or export_run(run, key, progress, source) for key in keys]
    finally:
        source.close()


def predict_files(run, key: str, paths: list[str], top: int = 3) -> list[dict]:
    """Top classes for each photo from export `key` of `run`, loaded in its own runtime (the CLI's `predict`).

    Photos that cannot be read get an `error` in words; the others are answered.
    """
    from core.data.images import ImageRejected, read_photo

    fmt = format_of(key)
    if key == "keras":
        if not run.model_path.exists():
            raise ExportError(f"Run {run.id} has no model yet: it has to finish (or be stopped after an epoch) first.")
        main = run.model_path
    else:
        verification = existing(run, key)
        if verification is None:
            raise ExportError(
                f"Run {run.id} has no {fmt.title} export yet: make it first with "
                f"python -m core export {run.path} --format {key}"
            )
        if not verification.passed:
            raise ExportError(
                f"The {fmt.title} export of run {run.id} failed its check, so it is not used: {verification.message}"
            )
        main = export_folder(run, key) / fmt.main
    class_names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
    size = run.image_size()
    quiet_tensorflow()
    predict = fmt.load(main, size)
    answers: list[dict[str, Any]] = []
    for path in paths:
        try:
            pixels = read_photo(path, size).astype(np.float32)
        except ImageRejected as error:
            answers.append({"path": path, "error": str(error)})
            continue
        probabilities = predict(pixels[None])[0]
        order = np.argsort(probabilities)[::-1][:top]
        answers.append({"path": path, "top": [(class_names[i], float(probabilities[i])) for i in order]})
    return answers


def _judge(fmt, reference, probabilities, labels, main: Path, latency: float, details: dict) -> Verification:
    agreement = float((reference.argmax(1) == probabilities.argmax(1)).mean())
    accuracy = float((probabilities.argmax(1) == labels).mean())
    keras_accuracy = float((reference.argmax(1) == labels).mean())
    if fmt.key == "tflite-int8":
        passed = accuracy >= keras_accuracy - MAX_INT8_ACCURACY_LOSS - 1e-9
        why = f"accuracy {accuracy:.1%} against {keras_accuracy:.1%} for the float model"
    else:
        passed = agreement >= 1 - MAX_AGREEMENT_LOSS - 1e-9
        why = f"it agrees with the Keras model on {agreement:.1%} of the photos"
    message = f"Checked the way it will be loaded ({fmt.runtime}): {why}." + (
        "" if passed else " That is not close enough: not offered."
    )
    size = sum(p.stat().st_size for p in main.rglob("*") if p.is_file()) if main.is_dir() else main.stat().st_size
    return Verification(
        fmt.key,
        fmt.title,
        fmt.runtime,
        passed,
        agreement,
        accuracy,
        keras_accuracy,
        len(labels),
        size,
        latency,
        details,
        message,
    )


def _latency(predict, pixels: np.ndarray, repeats: int = 20) -> float:
    """Milliseconds per photo, one photo at a time, after a warm-up (the median)."""
    one = pixels[:1]
    for _ in range(3):
        predict(one)
    times = []
    for index in range(repeats):
        started = time.perf_counter()
        predict(pixels[index % len(pixels) : index % len(pixels) + 1])
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)) * 1000, 2)


def _zip(folder: Path, target: Path) -> None:
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(folder.name) / path.relative_to(folder))
