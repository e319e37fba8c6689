"""Everything one training session holds (photos, classifier, placement, phase plans), set up once before the
phases: phase 1 trains a new head on the frozen network, phase 2 the chosen top of it at a lower learning rate."""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

from core.base.files import save_model_atomic
from core.data.pipeline import LabelledImages
from core.network.config import RunConfig
from core.network.distribute import Placement
from core.network.freezing import UnfreezePlan
from core.runs.directory import RunDirectory
from core.runs.status import Stage
from core.training.build import Classifier
from core.training.failures import Echo
from core.training.features import FeaturePlan
from core.training.prepare import Prepared

LAST_CHECKPOINT_SECONDS = 30.0  # the resumable checkpoint is written at most this often


@dataclass(frozen=True)
class PhasePlan:
    """One phase as configured: its number, length, peak learning rate and what it does, in words."""

    phase: int
    epochs: int
    learning_rate: float
    what: str

    @property
    def stage(self) -> Stage:
        return Stage.of_phase(self.phase)


def plan_phases(config: RunConfig, unfreeze: UnfreezePlan, scale: float = 1.0) -> list[PhasePlan]:
    """Phase 1, then phase 2 when it has epochs and something to unfreeze; `scale` multiplies the learning
    rates (for a global batch larger than the one set, `core.network.distribute`)."""
    head = PhasePlan(1, config.head_epochs, config.head_learning_rate * scale, "training the new head (base frozen)")
    plans = [head]
    if config.finetune_epochs and not unfreeze.trains_nothing:
        what = f"fine-tuning ({unfreeze} unfrozen)"
        plans.append(PhasePlan(2, config.finetune_epochs, config.finetune_learning_rate * scale, what))
    return [plan for plan in plans if plan.epochs > 0]


@dataclass
class Session:
    """Everything the phases share while one run trains."""

    run: RunDirectory
    config: RunConfig
    echo: Echo
    classifier: Classifier
    data: dict[str, LabelledImages]
    features: FeaturePlan
    batch_size: int
    steps: int
    class_weight: dict[int, float] | None
    checkpoint: object
    report: object = None
    epochs_done: int = 0
    last_saved: float = 0.0
    phase_seconds: dict[str, float] = field(default_factory=dict)
    pooled: dict | None = None  # fast mode: phase 1's stored `pool` output of the original photos
    head_enough: bool = False  # phase 2 ended early without improving on the new head alone (phase 1's model)
    placement: Placement | None = None  # the devices and precision (`core.network.distribute`); set by start_session

    @property
    def placed(self) -> Placement:
        """The devices and precision, which `start_session` always sets."""
        if self.placement is None:
            raise RuntimeError("the session has not been started (start_session places it)")
        return self.placement

    @property
    def monitor(self) -> str:
        # The best epoch is the most accurate on validation images. Late in fine-tuning, validation loss
        # often rises (the model grows more confident) while accuracy still improves: measured on the
        # shared datasets, choosing by loss kept an earlier, less accurate epoch (docs/speed.md).
        return "val_accuracy" if len(self.data["val"].images) else "accuracy"


def start_session(
    run: RunDirectory, prepared: Prepared, classifier: Classifier, echo: Echo, placement: Placement | None = None
) -> Session:
    """The shared state of the phases: batches, class weights, fast mode's plan and the best checkpoint."""
    from core.network.distribute import current_placement, placement_details
    from core.training.callbacks import BestCheckpoint
    from core.training.features import plan_features

    placement = placement or current_placement()
    config = prepared.config
    train = prepared.data["train"]
    # The batch size is per device: each step takes one from every replica.
    batch_size = min(placement.global_batch(config.batch_size), len(train.images))
    finetunes = config.finetune_epochs > 0 and not classifier.unfreeze.trains_nothing
    features = plan_features(
        config, classifier.weights_path, classifier.model, classifier.base, classifier.mask, finetunes
    )
    echo(features.description)
    if config.finetune_epochs and classifier.unfreeze.trains_nothing:
        echo("Phase 2 skipped: no base layers are set to unfreeze.")
    class_weight = _class_weights(train.labels, len(prepared.class_names), config.class_weights)
    steps = math.ceil(len(train.images) / batch_size)
    resume = classifier.resume
    status = run.raw_status()
    session = Session(
        run, config, echo, classifier, prepared.data, features, batch_size, steps, class_weight, None, prepared.report
    )
    session.placement = placement
    facts = placement.facts(config.batch_size, batch_size, config.optimizer)
    echo(f"Training on {placement_details(facts)}. Precision: {placement.why}.")
    earlier = (
        [row[session.monitor] for row in run.history() if isinstance(row.get(session.monitor), float)] if resume else []
    )
    run.best_checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    session.checkpoint = BestCheckpoint(
        run.best_checkpoint_path,
        classifier.model,
        monitor=session.monitor,
        initial_best=max(earlier) if earlier else None,  # a resumed run keeps its best so far
        min_interval=LAST_CHECKPOINT_SECONDS if features.cached else 0.0,
        save=save_model_atomic,
    )
    session.epochs_done = resume.epochs_done if resume else 0
    # The first epoch leaves a checkpoint to resume from, unless epochs take moments (fast mode),
    # where saving would cost more than redoing them; every phase's end is saved either way.
    session.last_saved = time.time() if features.cached else 0.0
    session.phase_seconds = dict(status.phase_seconds) if resume else {}
    run.update_status(
        class_weights=class_weight is not None,
        images={k: len(v.paths) for k, v in prepared.data.items()},
        epochs_total=config.head_epochs + config.finetune_epochs,
        steps_per_epoch=steps,
        batch_size=batch_size,
        feature_mode=features.description,
        machine=machine_facts(),
        placement=facts,
    )
    return session


def machine_facts() -> dict:
    """Where a run trains, for its report: cores, processor, GPUs and versions."""
    import platform

    import tensorflow as tf

    processor = platform.processor()
    # Linux names the model in /proc/cpuinfo; platform.processor() often does not.
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        processor = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        gpus.append(details.get("device_name") or device.name)
    return {
        "system": f"{platform.system()} {platform.release()}",
        "processor": processor or platform.machine(),
        "cores": os.cpu_count(),
        "gpus": gpus,
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
    }


def _class_weights(labels: np.ndarray, num_classes: int, mode: str) -> dict[int, float] | None:
    """Balanced weights when asked, or (auto) when the largest class is 1.5x the smallest or more."""
    if mode == "off" or len(labels) == 0:
        return None
    counts = np.bincount(labels, minlength=num_classes)
    present = counts[counts > 0]
    if mode == "auto" and present.max() < 1.5 * present.min():
        return None
    from sklearn.utils.class_weight import compute_class_weight

    classes = np.flatnonzero(counts)
    weights = compute_class_weight("balanced", classes=classes, y=labels)
    return {int(c): float(w) for c, w in zip(classes, weights, strict=True)}
