"""How long a run will take on this machine, before it starts and while it runs.

Before Start, the `speeds` task times each kind of work on this machine for the chosen
network and size (decoding a photo, the frozen network's pass over a photo, an augmented
copy, a training step of each phase, the graph building of each phase, saving the model);
`estimate` multiplies each by how much of it the run will do. While the run trains,
`seconds_left` replaces the estimate of each stage with what that stage has actually taken
once it has measured itself, and scales the stages still to come by how far the estimate
has been off so far, so the time left stays honest across stages.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any

from core.runs.status import RunStatus, Stage

STAGES = (Stage.PREPARING, Stage.FEATURES, Stage.HEAD, Stage.FINETUNE, Stage.EVALUATING)


@dataclass(frozen=True)
class StageSpeeds:
    """Seconds each kind of work takes on this machine (measured by the `speeds` task).

    Attributes:
        startup: starting Python, importing TensorFlow and building the network.
        decode: decoding and resizing one photo.
        forward: the frozen network's pass over one photo (also what evaluation costs a photo).
        augment: one randomly augmented copy of a photo.
        head_step, finetune_step: one training batch of phase 1 and of phase 2.
        head_trace, finetune_trace: Keras building each phase's training and validation steps, once per phase.
        save: saving the model once.
        forward_trace: building the frozen network's pass, once per extraction.
        head_epoch, finetune_epoch: what an epoch of each phase costs beyond its batches (starting and
            ending it).
        finetune_forward: phase 2's pass over one validation photo in fast mode (from the stored
            features through the blocks it trains), which every phase-2 epoch pays for each validation photo.
        bottom_forward: the frozen layers' pass over one photo (below the first layer phase 2 trains), which
            each altered version phase 2 makes costs a training photo (0: not measured, `forward` stands in).
    """

    startup: float
    decode: float
    forward: float
    augment: float
    head_step: float
    finetune_step: float
    head_trace: float
    finetune_trace: float
    save: float
    forward_trace: float = 0.0
    head_epoch: float = 0.0
    finetune_epoch: float = 0.0
    finetune_forward: float = 0.0
    bottom_forward: float = 0.0

    @classmethod
    def from_dict(cls, data: dict) -> StageSpeeds:
        return cls(**{f.name: float(data[f.name]) for f in fields(cls) if f.name in data})


def estimate(
    config, counts: dict[str, int], speeds: StageSpeeds, cached: bool, finetune_epochs: int | None = None
) -> dict[str, float]:
    """Seconds for each stage of a run of `config` on `counts` photos per split (train, val, test).

    `cached`: fast mode will be used (pretrained weights and the switch on). `finetune_epochs`: the phase-2
    epochs that run, where fine-tuning ends before the epochs set (0: skipped); None: all of them.
    """
    train, val, test = (counts.get(split, 0) for split in ("train", "val", "test"))
    batch = max(1, min(config.batch_size, max(train, 1)))
    steps = math.ceil(train / batch)
    views = config.feature_views if cached and config.augmentation.enabled else 1
    finetunes = config.finetune_epochs > 0 and not config.unfreeze.trains_nothing
    # Every photo is decoded twice: once when the scan checks it, once at the training size.
    stages = {Stage.PREPARING: speeds.startup + 2 * speeds.decode * (train + val + test)}
    # With phase 2 to come, phase 1 reads the original photos only, and phase 2 makes one altered version
    # of each training photo as each of its first epochs begins (`core.training.features.LazyViews`).
    lazy = views - 1 if cached and finetunes else 0
    per_version = ((speeds.bottom_forward or speeds.forward) + speeds.augment) * train
    if cached:
        work = speeds.forward * (train * (views - lazy) + val) + speeds.augment * train * (views - 1 - lazy)
        stages[Stage.FEATURES] = work + speeds.forward_trace
        validation = 0.0  # phase 1 validates on stored features too: a few matrix products
        finetune_validation = speeds.finetune_forward * val  # phase 2 through the blocks it trains
    else:
        stages[Stage.FEATURES] = 0.0
        validation = finetune_validation = speeds.forward * val
    # Each phase also saves checkpoints at its end.
    head_epoch = steps * speeds.head_step + speeds.head_epoch + validation
    stages[Stage.HEAD] = config.head_epochs * head_epoch + speeds.head_trace + 2 * speeds.save
    if finetunes:  # the first model: saved twice and scored on the test photos as phase 1 ends
        stages[Stage.HEAD] += 2 * speeds.save + speeds.forward * test + speeds.forward_trace
    finetune_epoch = steps * speeds.finetune_step + speeds.finetune_epoch + finetune_validation
    ran = config.finetune_epochs if finetune_epochs is None else finetune_epochs
    stages[Stage.FINETUNE] = (
        ran * finetune_epoch + min(ran, lazy) * per_version + speeds.finetune_trace + 2 * speeds.save
        if finetunes and ran
        else 0.0
    )
    calibration = min(train, 2000) + val
    # Evaluation and calibration each build a prediction graph of the whole model.
    stages[Stage.EVALUATING] = speeds.forward * (test + calibration) + speeds.save * 2 + 2 * speeds.forward_trace
    if finetunes and cached and not ran:  # the first model is kept: loaded and saved; its scores and stored features
        stages[Stage.EVALUATING] = speeds.save * 2  # give its evaluation and calibration (`core.training.keep`)
    if not config.head_epochs:
        stages[Stage.HEAD] = 0.0
    return {str(stage): round(seconds, 1) for stage, seconds in stages.items()}


def speeds_request(config, report) -> dict:
    """The `speeds` task's arguments for a run of `config` on `report`'s photos (what speed depends on only)."""
    from core.training.preflight import planned_image_size

    samples = [item.path for item in report.items[:: max(len(report.items) // 8, 1)]][:8]
    return {
        "config": config.replace(data="demo", head_epochs=1, finetune_epochs=1, seed=0, name="").to_dict(),
        "image_size": planned_image_size(config, report),
        "sample_paths": samples,
        "classes": len(report.class_names),
    }


def can_skip_finetuning(config, validation: int) -> bool:
    """Whether a run of `config` with `validation` photos may skip phase 2 (`finetune_until` "pays", given enough
    validation photos to judge: `core.training.phases.skip_finetuning`), so its shortest run has none."""
    from core.network.choices import BEST_NEEDS_VALIDATION

    judged = config.finetune_until == "pays" and validation >= BEST_NEEDS_VALIDATION
    return bool(judged and config.finetune_epochs and not config.unfreeze.trains_nothing)


def planned_seconds(config, report, speeds: dict, shortest: bool = False) -> dict[str, float]:
    """`estimate` for a run of `config` on `report`'s photos, split as the run will split them; `shortest`:
    for the run where fine-tuning is skipped (`can_skip_finetuning`; the whole run where it cannot be)."""
    from core.data.splits import make_splits

    plan = make_splits(report, config.val_fraction, config.test_fraction, config.seed)
    counts = {"train": len(plan.train), "val": len(plan.val), "test": len(plan.test)}
    cached = config.fast_mode and config.weights != "none"
    epochs = 0 if shortest and can_skip_finetuning(config, counts["val"]) else None
    return estimate(config, counts, StageSpeeds.from_dict(speeds), cached, epochs)


def seconds_left(
    planned: dict[str, float], status: RunStatus, epochs: list[dict], now: float | None = None
) -> float | None:
    """The time a running run still needs: the current stage from its own progress, the rest as estimated,
    corrected by how the finished stages compared with their estimates. None without an estimate."""
    if not planned or status.stage not in STAGES:
        return None
    now = now if now is not None else time.time()
    done = {stage: seconds for stage, seconds in status.stage_seconds.items() if stage != str(status.stage)}
    estimated_done = sum(planned.get(stage, 0.0) for stage in done)
    correction = min(max(sum(done.values()) / estimated_done, 0.5), 3.0) if estimated_done > 1.0 else 1.0
    current = str(status.stage)
    spent = now - status.stage_started if status.stage_started else 0.0
    plan_now = planned.get(current, 0.0)
    if plan_now > 1.0 and spent > plan_now * correction:  # this stage is overrunning too: so will the rest
        correction = min(max((sum(done.values()) + spent) / (estimated_done + plan_now), 0.5), 3.0)
    left = _stage_left(plan_now * correction, spent, status, epochs)
    later = STAGES[STAGES.index(status.stage) + 1 :]
    return left + sum(planned.get(str(stage), 0.0) for stage in later) * correction


def phase_pace(epochs: list[dict], phase: int, epochs_before_phase: int) -> tuple[float | None, int]:
    """Seconds per epoch of `phase` (its last three), and how many of its epochs have finished since it (re)started."""
    timed = [e for e in epochs if e.get("phase") == phase and e.get("seconds")]
    if not timed:
        return None, 0
    recent = [float(e["seconds"]) for e in timed[-3:]]
    return sum(recent) / len(recent), max(int(timed[-1]["epoch"]) - epochs_before_phase, 0)


def _stage_left(planned: float, spent: float, status: RunStatus, epochs: list[dict]) -> float:
    """What the current stage still needs: from its measured pace once it has one, else what remains of its plan."""
    phase = status.stage.phase
    if phase is not None and status.phase_epochs:
        per_epoch, finished = phase_pace(epochs, phase, status.epochs_before_phase)
        if per_epoch is not None:
            return max(status.phase_epochs - finished, 0) * per_epoch
    if status.stage_total and status.stage_done:
        return spent * (status.stage_total - status.stage_done) / status.stage_done
    return max(planned - spent, 0.15 * spent)  # past its plan: not "done", a little more of what it has taken


def measure_speeds(config, image_size: int, sample_paths: list[str], classes: int, repeats: int = 3) -> StageSpeeds:
    """Time each kind of work of a run of `config` on this machine, on random pixels and a few real photos.

    Random weights: speed does not depend on their values. Each phase is timed with Keras's own
    `fit` (training and validation step, once to build the graphs, then warm) and `train_on_batch`.
    """
    import tempfile

    import keras
    import numpy as np
    import psutil

    from core.data.images import load_rgb
    from core.network.backbones import get_backbone
    from core.network.freezing import find_cut, set_phase
    from core.network.model import build_augmenter, build_classifier, compile_for_phase
    from core.training.features import split_classifier

    spec = get_backbone(config.backbone)
    base = spec.build(image_size, weights=None)
    model = build_classifier(base, spec, classes, image_size, config.augmentation, config.pooling, config.head_units)
    startup = time.time() - psutil.Process().create_time()
    started = time.perf_counter()
    for path in sample_paths:
        load_rgb(path, image_size)
    decode = (time.perf_counter() - started) / max(len(sample_paths), 1)
    batch = max(1, min(config.batch_size, 32))
    pixels = np.random.default_rng(0).integers(0, 255, (batch, image_size, image_size, 3)).astype("float32")
    mask = config.unfreeze.mask(spec, [layer.name for layer in base.layers])
    cut = find_cut(base, mask) if config.fast_mode else ""
    parts = split_classifier(model, base, image_size, cut)
    extractor = parts.front_both or parts.front
    forward, forward_trace = _per_call(lambda: extractor.predict_on_batch(pixels), repeats)
    augment = _per_call(lambda: build_augmenter(config.augmentation, 0)(pixels, training=True), repeats)[0]
    bottom_forward = _per_call(lambda: parts.front.predict_on_batch(pixels), repeats)[0] if cut else forward
    set_phase(base, 1, mask)
    head: tuple[Any, Any] = (
        (parts.head, _random_like(parts.head.inputs[0], batch)) if config.fast_mode else (model, pixels)
    )
    compile_for_phase(head[0], config.optimizer, 1e-3)
    head_step, head_trace, head_epoch = _fit_timing(*head, batch, repeats)
    set_phase(base, 2, mask)
    top = parts.top_and_head if config.fast_mode and parts.top_and_head is not None else model
    compile_for_phase(top, config.optimizer, 1e-4)
    top_inputs = pixels if top is model else _random_like(top.inputs[0], batch)
    finetune_step, finetune_trace, finetune_epoch = _fit_timing(top, top_inputs, batch, repeats)
    finetune_forward = _per_call(lambda: top.predict_on_batch(top_inputs), repeats)[0] / batch
    with tempfile.TemporaryDirectory() as folder:
        save = _per_call(lambda: model.save(f"{folder}/m.keras"), 1)[0]
    keras.backend.clear_session()
    return StageSpeeds(
        startup,
        decode,
        forward / batch,
        augment / batch,
        head_step,
        finetune_step,
        head_trace,
        finetune_trace,
        save,
        forward_trace,
        head_epoch,
        finetune_epoch,
        finetune_forward if top is not model else 0.0,
        bottom_forward / batch,
    )


def _per_call(call, repeats: int) -> tuple[float, float]:
    """Seconds per call once warm, and the warm-up's extra seconds (building the graph)."""
    started = time.perf_counter()
    call()
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    steady = (time.perf_counter() - started) / repeats
    return steady, max(first - steady, 0.0)


def _fit_timing(model, inputs, batch: int, repeats: int) -> tuple[float, float, float]:
    """Seconds per training batch once warm, what building `fit`'s graphs (training and validation) costs,
    and what an epoch costs beyond its batches (starting and ending it, validating)."""
    import numpy as np

    labels = np.zeros(batch, np.int32)

    def epoch():
        model.fit(inputs, labels, batch_size=batch, validation_data=(inputs, labels), epochs=1, verbose=0)

    one_epoch, trace = _per_call(epoch, 1)
    step, _ = _per_call(lambda: model.train_on_batch(inputs, labels), repeats)
    return step, trace, max(one_epoch - step, 0.0)


def _random_like(tensor, batch: int):
    import numpy as np

    return np.random.default_rng(1).normal(size=(batch, *(int(d) for d in tensor.shape[1:]))).astype("float32")
