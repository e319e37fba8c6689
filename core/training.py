"""Two-phase fine-tuning of one run, from its directory to its evaluation.

It reads like fastai's `fine_tune`: prepare the photos, build the classifier (or resume
it), run each phase from a small typed plan (phase 1: a new head on the frozen network;
phase 2: the chosen top of the network as well, BatchNormalization frozen, at a lower
learning rate), keep a model, evaluate it. Every step writes to the run directory,
which is all the dashboard ever reads.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.backbones import BackboneSpec, get_backbone
from core.config import AUTO_SIZE, BEST_NEEDS_VALIDATION, RunConfig
from core.distribute import Placement
from core.errors import InputError
from core.features import FeaturePlan
from core.files import remove_temporary_files, save_model_atomic, write_atomic
from core.freezing import UnfreezePlan
from core.pipeline import LabelledImages
from core.processes import ProcessRecord
from core.runs import RunDirectory, run_title
from core.status import KEPT_MODEL, ResumePoint, RunState, Stage, keep_rule

WORKER_NICENESS = 10
LAST_CHECKPOINT_SECONDS = 30.0
RESERVE_NAME = ".reserve"  # set aside while training, so a full disk can still be reported
RESERVE_BYTES = 1024 * 1024
BATCH_EVENT_SECONDS = 0.25  # on stored features batches take milliseconds: stream at most 4 a second

Echo = Callable[[str], None]


class RunFailed(RuntimeError):
    """A failure with a message a person can act on; `bad_input` marks the user's input as the cause."""

    def __init__(self, message: str, bad_input: bool = False):
        super().__init__(message)
        self.bad_input = bad_input


class RunStopped(Exception):
    """A stop request arrived before training began."""


# --- the run, guarded ------------------------------------------------------------------


def train_run(run: RunDirectory, echo: Echo = print, record_process: bool = True) -> RunState:
    """Train `run` to the end and return its final state (succeeded, stopped or failed).

    Never raises for a training problem: the status says what went wrong and what to do,
    and the log has the traceback. `record_process`: False where another process stands for the
    run (a Ray task's supervisor, `core.cluster`).
    """
    return run_guarded(run, _train, echo, record_process)


def run_guarded(
    run: RunDirectory, body: Callable[[RunDirectory, Echo], RunState], echo: Echo, record_process: bool = True
) -> RunState:
    """Mark `run` running, call `body(run, echo)`, and turn any failure into a status a person can read."""
    _reserve_space(run)
    try:
        process = ProcessRecord.of(os.getpid())
        # A run trained here after a cluster trained part of it is no longer on the cluster's node.
        recorded = {"pid": process.pid, "pid_started": process.started, "node": {}} if record_process else {}
        run.update_status(
            state=RunState.RUNNING,
            stage=Stage.PREPARING,
            started=time.time(),
            message="Preparing the images",
            **recorded,
        )
        return body(run, echo)
    except RunStopped:
        run.update_status(
            state=RunState.STOPPED, stage=Stage.DONE, finished=time.time(), message="Stopped before training began."
        )
        return RunState.STOPPED
    except (RunFailed, InputError) as error:
        return _fail(run, str(error), echo, bad_input=getattr(error, "bad_input", True))
    except MemoryError:
        return _fail(run, "The machine ran out of memory. Try a smaller batch size or image size.", echo)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            _release_space(run)
            best = " The best checkpoint so far is kept." if run.best_checkpoint_path.exists() else ""
            return _fail(
                run,
                f"The disk is full, so training could not write its files.{best} Free some space, then train again.",
                echo,
            )
        echo(traceback.format_exc())
        return _fail(run, f"A file could not be read or written: {error}", echo)
    except Exception as error:  # the last line of defence: the status must still tell the truth
        echo(traceback.format_exc())
        return _fail(
            run,
            f"Training failed unexpectedly ({type(error).__name__}: {str(error)[:300]}). The log has the details.",
            echo,
        )
    finally:
        (run.path / RESERVE_NAME).unlink(missing_ok=True)


def _reserve_space(run: RunDirectory) -> None:
    """Set aside a little disk space so that, if the disk fills up, the failure can still be written down."""
    try:
        with open(run.path / RESERVE_NAME, "wb") as handle:
            handle.write(b"\0" * RESERVE_BYTES)
    except OSError:
        (run.path / RESERVE_NAME).unlink(missing_ok=True)


def _release_space(run: RunDirectory) -> None:
    """Give back the reserve and half-written temporary files; finished files are left alone."""
    (run.path / RESERVE_NAME).unlink(missing_ok=True)
    for folder in (run.path, run.best_checkpoint_path.parent):
        remove_temporary_files(folder)


def _fail(run: RunDirectory, message: str, echo: Echo, bad_input: bool = False) -> RunState:
    with contextlib.suppress(OSError):  # a log that cannot be written (full disk) must not hide the status
        echo(f"FAILED: {message}")
    run.update_status(
        state=RunState.FAILED, stage=Stage.DONE, finished=time.time(), message=message, bad_input=bad_input
    )
    return RunState.FAILED


# --- prepare ---------------------------------------------------------------------------


@dataclass
class Prepared:
    """The photos, decoded: `config` has the image size resolved (never `auto`)."""

    config: RunConfig
    class_names: list[str]
    data: dict[str, LabelledImages]
    report: object = None  # the scan (core.datasets.DatasetReport)


def prepare(run: RunDirectory, config: RunConfig, echo: Echo) -> Prepared:
    """Scan the photos, split them, choose the image size and decode every photo once.

    Writes `dataset.json` and `splits.csv`. Raises RunFailed for data that cannot train,
    RunStopped when Stop is pressed while decoding.
    """
    from core.datasets import make_splits
    from core.pipeline import decode_splits
    from core.sources import load_dataset

    report = load_dataset(config.data, config.val_data, config.test_data)
    write_atomic(run.dataset_path, json.dumps(report.to_dict()))
    if not run.about().name:  # named from the start when the dashboard created it; the CLI's, by --name or its photos
        created = run.raw_status().created or time.time()
        run.set_about(name=config.name or run_title(config, report.class_names, created))
    problems = report.problems_for_training()
    if problems:
        raise RunFailed(problems[0], bad_input=True)
    plan = make_splits(report, config.val_fraction, config.test_fraction, config.seed)
    for note in plan.notes + report.warnings:
        echo(note)
    if report.skipped:
        echo(f"{len(report.skipped)} file(s) left out; dataset.json lists each with the reason.")
        for reason, count in Counter(entry.reason for entry in report.skipped).most_common(10):
            echo(f"  {count} x {reason}")
    if not plan.train:
        raise RunFailed("There are no training images after the split.", bad_input=True)
    if config.image_size == AUTO_SIZE:
        side = report.typical_side()
        config = config.replace(image_size=get_backbone(config.backbone).auto_image_size(side))
        echo(f"Image size {config.image_size} px, chosen from the photos (typically {side} px on their shorter side).")
    run.update_status(image_size=config.image_size)

    started, last_update = time.time(), [0.0]

    def progress(done: int, total: int) -> bool:
        if run.stop_requested():
            return False
        if time.time() - last_update[0] > 0.5 or done == total:
            last_update[0] = time.time()
            run.update_status(message=f"Preparing the images ({done} of {total})", stage_done=done, stage_total=total)
        return True

    try:
        data = decode_splits(plan, config.image_size, progress=progress, echo=echo)
    except InterruptedError:
        raise RunStopped() from None
    echo(
        f"Prepared {sum(len(d.paths) for d in data.values())} images at {config.image_size} px in {time.time() - started:.1f} s."
    )
    write_atomic(run.splits_path, plan.to_csv(used={p for d in data.values() for p in d.paths}))
    adopt_estimate(run, run.config(), report)
    return Prepared(config, plan.class_names, data, report)


def adopt_estimate(run: RunDirectory, config: RunConfig, report) -> None:
    """A run started before its speeds were measured takes the estimate as soon as they are (the
    dashboard's `speeds` task caches them), so its time left covers every stage."""
    from core.estimate import planned_seconds, speeds_request
    from core.tasks import Task, read_result, result_path

    if run.raw_status().estimate or report is None:
        return
    speeds = read_result(result_path(Task.SPEEDS, speeds_request(config, report)))
    if speeds and "error" not in speeds:
        run.update_status(estimate=planned_seconds(config, report, speeds))


# --- build or resume -------------------------------------------------------------------


@dataclass
class Classifier:
    """The classifier and what decides which of its layers learn.

    Attributes:
        base: the pretrained network, nested inside `model`.
        unfreeze: the plan, resolved for this backbone (never `auto`).
        mask: per base layer, whether the plan unfreezes it.
        freeze_batch_norm: False for random weights, whose statistics are worth nothing.
        weights_path: the pretrained weights file; None for random weights.
        resume: where a resumed run picks up; None for a fresh run.
    """

    model: object
    base: object
    spec: BackboneSpec
    unfreeze: UnfreezePlan
    mask: list[bool]
    freeze_batch_norm: bool
    weights_path: str | None
    resume: ResumePoint | None = None


def build_or_resume(run: RunDirectory, prepared: Prepared, echo: Echo) -> Classifier:
    """A new classifier with the chosen weights, or the interrupted run's, as of its last finished epoch."""
    import keras

    from core.freezing import count_trainable, set_phase
    from core.model import build_classifier
    from core.weights import build_base, resolve_weights

    config = prepared.config
    keras.utils.set_random_seed(config.seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()  # same seed, same result (the page promises it)
    spec = get_backbone(config.backbone)
    choice = resolve_weights(spec, config.image_size, config.weights)
    echo(f"Backbone {spec.label} at {config.image_size} px with {choice.description}.")
    resume = run.resume_point()
    if resume is None:
        base = build_base(spec, config.image_size, choice)
        model = build_classifier(
            base,
            spec,
            len(prepared.class_names),
            config.image_size,
            config.augmentation,
            pooling=config.pooling,
            head_units=config.head_units,
            dropout=config.dropout,
            seed=config.seed,
            pretrained=choice.kind != "none",
        )
        run.update_status(base_layer=base.name)
    else:
        model = keras.models.load_model(run.last_checkpoint_path, safe_mode=True)
        base = model.get_layer(run.raw_status().base_layer)
        run.truncate_history(resume.epochs_done)
        echo(f"Resuming after epoch {resume.epochs_done} (phase {resume.phase}) from the last checkpoint.")
    unfreeze = config.unfreeze.resolve(spec)
    mask = unfreeze.mask(spec, [layer.name for layer in base.layers])
    classifier = Classifier(model, base, spec, unfreeze, mask, choice.kind != "none", choice.path, resume)
    set_phase(base, 2, mask, classifier.freeze_batch_norm)
    phase2 = count_trainable(model)
    set_phase(base, 1, mask)
    run.update_status(
        weights=choice.description,
        weights_kind=choice.kind,
        unfreeze=str(unfreeze),
        class_names=prepared.class_names,
        total_params=int(model.count_params()),
        trainable_params_phase1=count_trainable(model),
        trainable_params_phase2=phase2,
    )
    return classifier


# --- the phases ------------------------------------------------------------------------


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
    rates (for a global batch larger than the one set, `core.distribute`)."""
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
    placement: Placement | None = None  # the devices and precision (`core.distribute`); set by start_session

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
    from core.callbacks import BestCheckpoint
    from core.distribute import current_placement, placement_in_words
    from core.features import plan_features

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
    echo(f"Training on {placement_in_words(facts)}. Precision: {placement.why}.")
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


def run_phases(session: Session) -> RunState:
    """Each planned phase in turn, from where a resumed run left off; STOPPED if Stop was pressed."""
    resume = session.classifier.resume
    scale = session.placement.learning_rate_scale(session.config.optimizer)
    plans = plan_phases(session.config, session.classifier.unfreeze, scale)
    for plan in plans:
        if resume and plan.phase < resume.phase:
            continue
        phase_start = resume.phase_start if resume and plan.phase == resume.phase else session.epochs_done
        epochs = phase_start + plan.epochs - session.epochs_done
        adopt_estimate(session.run, session.run.config(), session.report)
        if epochs > 0 and run_phase(session, plan, phase_start, epochs):
            return RunState.STOPPED
        if plan.phase == 1 and len(plans) > 1 and not session.run.raw_status().first_model:
            keep_first_model(session)
    return RunState.SUCCEEDED


def keep_first_model(session: Session) -> None:
    """The head-trained model, usable the moment phase 1 ends: saved, scored on the test photos and offered
    while phase 2 runs. At the end the final model replaces it, unless the first did better on enough
    validation photos to tell them apart (`keep_model`)."""
    run, model = session.run, session.classifier.model
    started = time.perf_counter()
    kept = _keepable(session, model)
    save_model_atomic(kept, run.first_model_path)
    save_model_atomic(kept, run.model_path)
    last = _last_epoch(run)
    evaluation = _score(session, model)
    evaluation["model"] = "first"
    write_atomic(run.evaluation_path, json.dumps(evaluation, indent=1))
    first = {
        "val_accuracy": last.get("val_accuracy") if isinstance(last.get("val_accuracy"), float) else None,
        "accuracy": evaluation["accuracy"],
        "split": evaluation["split"],
        "count": evaluation["count"],
        "seconds": round(time.perf_counter() - started, 2),
    }
    first["then"], first["reason"] = keep_rule(
        session.config.keep, len(session.data["val"].images), BEST_NEEDS_VALIDATION
    )
    run.update_status(
        first_model=first, kept="first", accuracy=evaluation["accuracy"], accuracy_split=evaluation["split"]
    )
    on = f"{first['val_accuracy']:.0%} on validation photos" if first["val_accuracy"] is not None else "ready"
    session.echo(f"A first model is ready ({on}, {evaluation['accuracy']:.1%} on {evaluation['split']}).")


def run_phase(session: Session, plan: PhasePlan, phase_start: int, epochs: int) -> bool:
    """Fit one phase for `epochs` epochs (fewer when resumed); True when Stop was pressed."""
    from core.callbacks import StopOnRequest
    from core.freezing import count_trainable, set_phase
    from core.model import compile_for_phase

    run, config, classifier = session.run, session.config, session.classifier
    started = time.perf_counter()
    set_phase(classifier.base, plan.phase, classifier.mask, classifier.freeze_batch_norm)
    try:
        fit_model, train_ds, val_ds = _phase_inputs(session, plan)
    except RunStopped:
        if plan.phase == 1 or not run.best_checkpoint_path.exists():
            raise
        return True  # stopped while phase 2 prepared: phase 1's best model stands
    # The average spans about one epoch: long enough to smooth the last steps' noise, short
    # enough to follow the learning of a phase only a few epochs long.
    compile_for_phase(fit_model, config.optimizer, plan.learning_rate, session.steps if config.average_weights else 0)
    session.echo(
        f"Phase {plan.phase}: {plan.what}, {epochs} epoch(s) at learning rate {plan.learning_rate:g}, "
        f"{count_trainable(classifier.model):,} trainable weights."
    )
    run.update_status(
        stage=plan.stage,
        message=f"Phase {plan.phase}: {plan.what}",
        phase_epochs=epochs,
        epoch=session.epochs_done,
        epochs_before_phase=session.epochs_done,
    )
    stopper = StopOnRequest(run.stop_path)
    stream, callbacks = _phase_callbacks(session, plan, phase_start, epochs, stopper)
    history = fit_model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=session.epochs_done + epochs,
        initial_epoch=session.epochs_done,
        callbacks=callbacks,
        class_weight=session.class_weight,
        verbose=0,
    )
    session.epochs_done += len(history.history.get("loss", []))
    key = str(plan.phase)
    session.phase_seconds[key] = round(session.phase_seconds.get(key, 0.0) + time.perf_counter() - started, 2)
    run.update_status(phase_seconds=session.phase_seconds)
    if stream.nan_seen:
        raise RunFailed(
            f"The loss became NaN (not a number) in phase {plan.phase}: training diverged, usually because "
            f"the learning rate ({plan.learning_rate:g}) is too high. Try one 10 times lower."
        )
    return stopper.stopped


def _phase_inputs(session: Session, plan: PhasePlan):
    """The model to fit and its training and validation batches: stored features in fast mode, else photos."""
    from core.features import ExtractionStopped, phase_inputs
    from core.pipeline import make_dataset

    run = session.run
    if session.features.cached:
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            message = f"The pretrained network is reading each photo once: {done:,} of {total:,} photos"
            run.update_status(stage=Stage.FEATURES, message=message, stage_done=done, stage_total=total)

        try:
            inputs = phase_inputs(
                session.features,
                plan.phase,
                session.data,
                session.config,
                session.batch_size,
                stop_requested=run.stop_path.exists,
                progress=progress,
            )
        except ExtractionStopped:
            raise RunStopped() from None
        if inputs is not None:
            done = (
                "Reused the cached output of the frozen layers"
                if inputs.reused
                else "Computed the frozen layers' output"
            )
            session.echo(f"{done} in {time.perf_counter() - started:.1f} s.")
            if inputs.pooled is not None:
                session.pooled = inputs.pooled
            return inputs.model, inputs.train, inputs.val
    train, val = session.data["train"], session.data["val"]
    train_ds = make_dataset(train.images, train.labels, session.batch_size, shuffle=True, seed=session.config.seed)
    val_ds = make_dataset(val.images, val.labels, session.batch_size, shuffle=False) if len(val.images) else None
    return session.classifier.model, train_ds, val_ds


def _phase_callbacks(session: Session, plan: PhasePlan, phase_start: int, epochs: int, stopper):
    """The event stream, checkpoints, stop and NaN guards, and the learning-rate schedule of one phase."""
    import keras

    from core.callbacks import EventStream, ResumableSchedule, cosine_schedule

    run, config = session.run, session.config
    phase_end = session.epochs_done + epochs

    def on_epoch(row: dict) -> None:
        session.echo(_epoch_line(row, config))
        fields = {"epoch": int(row["epoch"]), "last_epoch": row}
        # A save costs about 0.2 s: on small data that is a large share of an epoch, so the
        # resumable checkpoint is kept at most every LAST_CHECKPOINT_SECONDS (and at phase ends).
        if time.time() - session.last_saved >= LAST_CHECKPOINT_SECONDS or int(row["epoch"]) >= phase_end:
            save_model_atomic(session.classifier.model, run.last_checkpoint_path)
            session.last_saved = time.time()
            fields["resume_point"] = ResumePoint(plan.phase, int(row["epoch"]), phase_start)
        run.update_status(**fields)

    stream = EventStream(
        run.events_path,
        run.history_path,
        phase=plan.phase,
        steps_per_epoch=session.steps,
        batch_size=session.batch_size,
        epoch_offset=session.epochs_done,
        on_epoch=on_epoch,
        min_batch_interval=BATCH_EVENT_SECONDS if session.features.cached else 0.0,
    )
    # With weight averaging, the averaged weights are swapped in for validation and at each
    # epoch's end, so the stream, the checkpoints and early stopping all see the averaged model.
    swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.average_weights else []
    callbacks = swap + [stream, session.checkpoint, stopper, keras.callbacks.TerminateOnNaN()]
    if config.early_stopping_patience and epochs > 1:
        # Phase 2 goes on from where phase 1 ended, not from phase 1's best epoch (Keras would restore
        # that at the end of every fit): on small validation sets the "best" epoch is often an early,
        # undertrained one. With `keep` best, the best checkpoint across both phases is what is kept.
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor=session.monitor, patience=config.early_stopping_patience)
        )
    if config.cosine_decay:
        # Phase 2 warms up over its first epoch: full-size first steps on freshly unfrozen layers
        # undo the head's work (hymenoptera at 3e-4: the training loss went from 0.37 to 0.93).
        total = plan.epochs * session.steps
        warmup = min(session.steps, total // 2) if plan.phase == 2 else 0
        callbacks.append(
            ResumableSchedule(cosine_schedule(plan.learning_rate, total, warmup), phase_start, session.steps, total)
        )
    elif config.reduce_lr_patience and epochs > 1:
        monitor = "val_loss" if session.monitor == "val_accuracy" else "loss"
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=0.3, patience=config.reduce_lr_patience, min_lr=1e-7
            )
        )
    return stream, callbacks


# --- keep and evaluate ----------------------------------------------------------------


def keep_model(session: Session, outcome: RunState):
    """The model the run keeps, and which it is ("final" or "best"); (None, None) when nothing was saved.

    `keep` auto keeps the best epoch only with at least BEST_NEEDS_VALIDATION validation photos.
    A stopped run keeps its most accurate epoch.
    """
    import keras

    config, echo = session.config, session.echo
    validation = len(session.data["val"].images)
    keep = config.keep if config.keep != "auto" else ("best" if validation >= BEST_NEEDS_VALIDATION else "final")
    if keep == "final" and outcome is RunState.SUCCEEDED:
        # As training left it (a resumed run's last checkpoint is its final epoch); averaged when averaging is on.
        why = f" ({validation} validation photos are too few to pick an epoch by)" if config.keep == "auto" else ""
        last = _last_epoch(session.run)
        # As for the best epoch: with few validation photos a difference of one or two photos is luck, and the
        # settled, fine-tuned model is the better bet (hymenoptera, 36 photos: first 0.923, final 0.922 over six
        # seeds; flowers5, 650 photos: 0.719 against 0.774, which validation tells apart).
        if validation >= BEST_NEEDS_VALIDATION and _first_does_better(session, last.get("val_accuracy")):
            echo("Keeping the first model: fine-tuning did not do better on the validation photos.")
            return keras.models.load_model(session.run.first_model_path, safe_mode=True), "first"
        echo(f"Keeping the final model{why}.")
        return session.classifier.model, "final"
    if session.run.best_checkpoint_path.exists():
        # The best checkpoint spans both phases, so it is never worse on validation than the first model.
        echo(f"Keeping the most accurate epoch on {'validation' if validation else 'training'} images.")
        return keras.models.load_model(session.run.best_checkpoint_path, safe_mode=True), "best"
    return None, None


def _keepable(session: Session, model):
    """The model as the run keeps it: in float32 when it trained in mixed precision, so the model file and its
    exports compute the same on any processor (checkpoints keep the mixed model, to resume as it trained)."""
    from core.distribute import float32_copy

    return float32_copy(model) if session.placement.mixed else model


def _last_epoch(run: RunDirectory) -> dict:
    """The last row of the run's history (read once), or {} before the first epoch."""
    history = run.history()
    return history[-1] if history else {}


def _first_does_better(session: Session, final_val_accuracy) -> bool:
    """Whether the first model (phase 1's) scored higher on validation than the final one (ties go to the final)."""
    first = session.run.raw_status().first_model.get("val_accuracy")
    return (
        isinstance(first, float)
        and isinstance(final_val_accuracy, float)
        and first > final_val_accuracy
        and session.run.first_model_path.exists()
    )


def _score(session: Session, model) -> dict:
    """`model` on the test photos (else validation, else training): the evaluation, as `evaluation.json` holds it."""
    from core.evaluation import evaluate_predictions
    from core.pipeline import make_dataset

    run = session.run
    split = next(name for name in ("test", "val", "train") if len(session.data[name].images) or name == "train")
    photos = session.data[split]
    probabilities = model.predict(make_dataset(photos.images, None, session.batch_size, shuffle=False), verbose=0)
    class_names = run.raw_status().class_names
    return evaluate_predictions(photos.labels, probabilities, class_names, photos.paths, split=split)


def evaluate(session: Session, model, kept: str, outcome: RunState) -> RunState:
    """Save the kept model, score it on the test photos (else validation, else training) and finish the status."""
    from core.calibration import calibrate_model, calibrate_stored

    run = session.run
    save_model_atomic(_keepable(session, model), run.model_path)
    run.update_status(kept=kept, stage=Stage.EVALUATING, message="Evaluating on the photos kept aside")
    evaluation = _score(session, model)
    evaluation["model"] = kept
    split, class_names = evaluation["split"], evaluation["class_names"]
    evaluation["seconds"] = round(time.time() - (run.raw_status().started or time.time()), 1)
    write_atomic(run.evaluation_path, json.dumps(evaluation, indent=1))
    run.update_status(message="Measuring how far photos of each class lie from the others")
    data, seed = session.data, session.config.seed
    if session.pooled is not None and (kept == "first" or "2" not in session.phase_seconds):
        # Only the head learned: the pool layer's output is what fast mode stored, so nothing runs again.
        pooled = session.pooled
        calibration = calibrate_stored(pooled["train"], data["train"].labels, pooled["val"], len(class_names), seed)
    else:
        calibration = calibrate_model(model, data["train"], data["val"], len(class_names), seed)
    write_atomic(run.calibration_path, json.dumps(calibration))
    from core.evaluation import photos_of

    summary = f"{evaluation['accuracy']:.1%} accuracy on {photos_of(evaluation['count'], split)}."
    session.echo(summary)
    if outcome is RunState.STOPPED:
        chosen = {"best": "the epoch that did best on the validation photos so far was kept"}.get(
            kept, f"{KEPT_MODEL[kept]} was kept"
        )
        message = f"Stopped by request: {chosen}. {summary}"
    else:
        message = f"Finished: {KEPT_MODEL[kept]} was kept. {summary}"
    run.update_status(
        state=outcome,
        stage=Stage.DONE,
        finished=time.time(),
        message=message,
        accuracy=evaluation["accuracy"],
        accuracy_split=split,
        resume_requested=False,
    )
    return outcome


def _train(run: RunDirectory, echo: Echo) -> RunState:
    """place → prepare → build or resume → the phases → keep → evaluate, all within the devices' strategy."""
    from core.distribute import place

    config = run.config().validate()
    placement = place(config.devices, config.precision)  # before TensorFlow starts: it picks the devices
    with placement.scope():
        prepared = prepare(run, config, echo)
        classifier = build_or_resume(run, prepared, echo)
        session = start_session(run, prepared, classifier, echo, placement)
        outcome = run_phases(session)
        model, kept = keep_model(session, outcome)
        if model is None:
            message = "Stopped before the first epoch finished: nothing was saved."
            run.update_status(state=RunState.STOPPED, stage=Stage.DONE, finished=time.time(), message=message)
            return RunState.STOPPED
        return evaluate(session, model, kept, outcome)


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


def _epoch_line(row: dict, config: RunConfig) -> str:
    parts = [f"phase {row['phase']} epoch {row['epoch']}/{config.head_epochs + config.finetune_epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if row.get(key) is not None:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{row['seconds']:.1f} s")
    return "  ".join(parts)


def run_worker(run_path: str | os.PathLike) -> int:
    """Entry point of a worker process: wait for a training slot, then train."""
    from core.runs import wait_for_slot

    run = RunDirectory(run_path)
    # Training takes every core it can; a lower priority lets the dashboard that shares
    # the machine answer clicks at once while a run trains.
    os.nice(WORKER_NICENESS)
    slot = wait_for_slot(run)
    if slot is None:
        run.update_status(
            state=RunState.STOPPED,
            stage=Stage.DONE,
            finished=time.time(),
            message="Stopped while waiting in the queue.",
        )
        return 0
    try:
        state = train_run(run, echo=lambda line: print(line, flush=True))
    finally:
        slot.release()
    return 0 if state in (RunState.SUCCEEDED, RunState.STOPPED) else 1
