"""What each task computes (`core.base.tasks.Task`), in the task's own process: `python -m core task NAME ARGS OUT`.

Each body imports what it needs inside itself, so a task loads TensorFlow only when it uses it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.base.errors import InputError
from core.base.files import cache_home, write_atomic
from core.base.tasks import Task, read_result

TASK_NICENESS = 5  # below the web server (which must answer clicks) and above training (which can wait)


def run_task(name: str, args: dict[str, Any], out: str | Path) -> int:
    """Body of `python -m core task`: compute, then write the result (or a person-readable error)."""
    out = Path(out)
    try:
        result = BODIES[Task(name)](**args)
    except InputError as error:  # already in words for a person
        result = {"error": str(error)}
    except Exception as error:  # the page shows this message instead of a result
        result = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    write_atomic(out, json.dumps(result))
    out.with_suffix(".pid").unlink(missing_ok=True)
    return 0 if "error" not in result else 1


def network_task(backbone: str, image_size: int, pooling: str, head_units: list[int], classes: int) -> dict[str, Any]:
    """The classifier as it would be built: the base's layers (block, weights, BatchNormalization) and
    the weights the head trains, counted by Keras (`count_params`)."""
    from core.network.backbones import get_backbone
    from core.network.config import AugmentationConfig
    from core.network.freezing import count_trainable, layer_table, set_phase
    from core.network.model import build_classifier

    spec = get_backbone(backbone)
    base = spec.build(image_size, weights=None)
    model = build_classifier(base, spec, classes, image_size, AugmentationConfig.off(), pooling, tuple(head_units))
    set_phase(base, 1, [])
    return {"rows": [row.__dict__ for row in layer_table(base, spec)], "head_params": count_trainable(model)}


def augment_task(paths: list[str], augmentation: dict[str, Any], seed: int, size: int = 128) -> dict[str, Any]:
    """Each image as training would see it after random augmentation, saved as PNGs."""
    import numpy as np
    from PIL import Image

    from core.data.images import load_rgb
    from core.network.config import AugmentationConfig
    from core.network.model import build_augmenter

    pixels = np.stack([load_rgb(p, size) for p in paths]).astype("float32")
    augmented = np.asarray(build_augmenter(AugmentationConfig(**augmentation), seed)(pixels, training=True))
    folder = (
        cache_home()
        / "tasks"
        / f"augment-{hashlib.sha1(json.dumps([paths, augmentation, seed]).encode()).hexdigest()[:16]}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    outputs = []
    for index, image in enumerate(np.clip(augmented, 0, 255).astype("uint8")):
        target = folder / f"{index}.png"
        Image.fromarray(image).save(target)
        outputs.append(str(target))
    return {"images": outputs}


def predict_task(run_dir: str, image_paths: list[str]) -> dict[str, Any]:
    """Top classes for each photo from a run's kept model (loaded in Keras safe mode), and whether the photo
    looks like none of the classes (`core.training.calibration`, when the run has been calibrated)."""
    import numpy as np

    from core.data.images import ImageRejected, read_photo
    from core.network.inference import load_model
    from core.runs.directory import RunDirectory
    from core.training.calibration import features_of, unfamiliar

    run = RunDirectory(run_dir)
    model = load_model(run.model_path)
    class_names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
    calibration = read_result(run.calibration_path)
    results: list[dict[str, Any]] = []
    for path in image_paths:
        try:
            pixels = read_photo(path, run.image_size())
        except ImageRejected as error:
            results.append({"path": path, "error": str(error)})
            continue
        features, probabilities = features_of(model, pixels[None])
        order = np.argsort(probabilities[0])[::-1][:3]
        answer: dict[str, Any] = {"path": path, "top": [(class_names[i], float(probabilities[0][i])) for i in order]}
        if calibration:
            distance, beyond = unfamiliar(features, calibration)
            answer.update(distance=float(distance[0]), unfamiliar=bool(beyond[0]))
        results.append(answer)
    return {"predictions": results}


def speeds_task(config: dict[str, Any], image_size: int, sample_paths: list[str], classes: int) -> dict[str, Any]:
    """How long each kind of work of this run takes on this machine (`core.training.estimate.measure_speeds`)."""
    import dataclasses

    from core.network.config import RunConfig
    from core.training.estimate import measure_speeds

    speeds = measure_speeds(RunConfig.from_dict(config), image_size, sample_paths, classes)
    return dataclasses.asdict(speeds)


def check_weights_task(backbone: str, path: str) -> dict[str, Any]:
    """Whether a weights file fits `backbone`: loaded into it, as training would load it."""
    from core.network.backbones import get_backbone
    from core.network.weights import WeightsChoice, build_base

    spec = get_backbone(backbone)
    build_base(spec, spec.default_size, WeightsChoice("file", path, Path(path).name))
    return {"fits": True}


def export_task(run_dir: str, format: str) -> dict[str, Any]:
    """One export of a run's model, made and checked (`core.results.export`); an export already made is read back."""
    import dataclasses

    from core.base.files import write_atomic
    from core.results.export import existing, export_run, progress_path
    from core.runs.directory import RunDirectory

    run = RunDirectory(run_dir)
    done = existing(run, format)
    if done is not None:
        return dataclasses.asdict(done)
    line = progress_path(run, format)
    try:
        return dataclasses.asdict(export_run(run, format, progress=lambda text: write_atomic(line, text)))
    finally:
        line.unlink(missing_ok=True)


def explain_task(run_dir: str, image_paths: list[str], class_names: list[str | None] | None = None) -> dict[str, Any]:
    """Heatmap overlays of photos under a run's kept model, kept in the run's `heatmaps/` (`core.results.explain`)."""
    from core.results.explain import explain_photos
    from core.runs.directory import RunDirectory

    return {"explanations": explain_photos(RunDirectory(run_dir), image_paths, class_names)}


def collect_task(run_dir: str) -> dict[str, Any]:
    """Each class's learning curve and the pair of classes mixed up most, in words (`core.results.collect_next`)."""
    from core.results.review import what_to_collect
    from core.runs.directory import RunDirectory

    return what_to_collect(RunDirectory(run_dir))


def suggest_task(run_dir: str, folder: str) -> dict[str, Any]:
    """A class suggested for each photo of `folder` (photos nobody has sorted) by a run's kept model."""
    from dataclasses import asdict

    from core.results.suggest import photos_in, suggest_labels
    from core.runs.directory import RunDirectory

    return {"suggestions": [asdict(s) for s in suggest_labels(RunDirectory(run_dir), photos_in(folder))]}


def review_task(run_dir: str) -> dict[str, Any]:
    """The photos worth a second look under a run's kept model, and its near-copies (`core.results.review`)."""
    from core.results.review import review
    from core.runs.directory import RunDirectory

    return review(RunDirectory(run_dir))


def sample_task(name: str) -> dict[str, Any]:
    """Download (once) and extract a sample set with Keras's own downloader."""
    from core.data.sources import download_sample

    return {"path": str(download_sample(name))}


def lr_find_task(config: dict[str, Any]) -> dict[str, Any]:
    """The learning-rate sweep for phase 1 with these settings (prepared exactly as training prepares)."""
    import tempfile

    from core.network.config import RunConfig
    from core.runs.directory import RunDirectory
    from core.runs.status import RunState
    from core.training.lr_finder import find_learning_rate

    folder = cache_home() / "lr_find"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        run = RunDirectory.create(scratch, RunConfig.from_dict(config), run_id="lr-find")
        lines: list[str] = []
        if find_learning_rate(run, echo=lines.append) is not RunState.SUCCEEDED:
            return {"error": run.raw_status().message or "The learning-rate sweep failed."}
        result = json.loads((run.path / "lr_find.json").read_text())
        result["message"] = run.raw_status().message
        return result


BODIES: dict[Task, Callable[..., dict[str, Any]]] = {
    Task.NETWORK: network_task,
    Task.AUGMENT: augment_task,
    Task.PREDICT: predict_task,
    Task.SAMPLE: sample_task,
    Task.SPEEDS: speeds_task,
    Task.CHECK_WEIGHTS: check_weights_task,
    Task.EXPORT: export_task,
    Task.EXPLAIN: explain_task,
    Task.REVIEW: review_task,
    Task.COLLECT: collect_task,
    Task.SUGGEST: suggest_task,
    Task.LR_FIND: lr_find_task,
}
