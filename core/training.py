"""Two-phase fine-tuning of one run, from its directory to its evaluation.

Phase 1 trains a new head on the frozen base; phase 2 unfreezes the chosen top of the
base (BatchNormalization stays frozen) and fine-tunes at a lower learning rate. Every
step writes to the run directory, which is all the dashboard ever reads.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import io
import json
import math
import os
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.backbones import get_backbone
from core.config import AUTO_SIZE, BEST_NEEDS_VALIDATION, ConfigError, RunConfig
from core.datasets import DatasetError, DatasetReport, SkippedFile, SplitPlan, make_splits, resolve_source, scan_dataset
from core.runs import RunDirectory, write_atomic
from core.weights import WeightsUnavailable

WORKER_NICENESS = 10
LAST_CHECKPOINT_SECONDS = 30.0
RESERVE_NAME = ".reserve"  # set aside while training, so a full disk can still be reported
RESERVE_BYTES = 1024 * 1024
BATCH_EVENT_SECONDS = 0.25  # on cached features batches take milliseconds: stream at most 4 a second


class RunFailed(RuntimeError):
    """A failure with a message a person can act on; `bad_input` marks the user's input as the cause."""

    def __init__(self, message: str, bad_input: bool = False):
        super().__init__(message)
        self.bad_input = bad_input


class RunStopped(Exception):
    """A stop request arrived before training began."""


def load_dataset(config: RunConfig) -> DatasetReport:
    """Scan the configured data (and the separate validation and test folders, if any)."""
    report = scan_dataset(resolve_source(config.data))
    extras = [("val", config.val_data), ("test", config.test_data)]
    if not any(path for _, path in extras):
        return report
    if report.layout == "split":
        report.items = [i for i in report.items if i.split == "train"]
    else:
        report.items = [_with_split(i, "train") for i in report.items]
    report.layout = "split"
    for split, path in extras:
        if not path:
            continue
        extra = scan_dataset(resolve_source(path))
        for item in extra.items:
            if item.label in report.class_names:
                report.items.append(_with_split(item, split))
            else:
                report.skipped.append(SkippedFile(item.path, f"class '{item.label}' has no training images"))
        report.skipped.extend(extra.skipped)
    return report


def _with_split(item, split):
    from dataclasses import replace

    return replace(item, split=split)


def train_run(run: RunDirectory, echo: Callable[[str], None] = print, find_lr: bool = False) -> str:
    """Train `run` to the end and return its final state (succeeded, stopped or failed).

    With `find_lr`, prepare everything as for training, then only sweep phase 1's learning
    rate (`core.lr_finder`) and write `lr_find.json`.

    Never raises for a training problem: the status says what went wrong and what to do,
    and the log has the traceback.
    """
    _reserve_space(run)
    try:
        run.write_status(
            state="running",
            started=time.time(),
            pid=os.getpid(),
            pid_started=_process_start(),
            phase=0,
            message="Preparing the images",
        )
        return _train(run, echo, find_lr)
    except RunStopped:
        run.write_status(state="stopped", finished=time.time(), message="Stopped before training began.")
        return "stopped"
    except RunFailed as error:
        return _fail(run, str(error), echo, bad_input=error.bad_input)
    except (DatasetError, WeightsUnavailable, ConfigError) as error:
        return _fail(run, str(error), echo, bad_input=True)
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
        for tmp in folder.glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)


def _fail(run: RunDirectory, message: str, echo: Callable[[str], None], bad_input: bool = False) -> str:
    with contextlib.suppress(OSError):  # a log that cannot be written (full disk) must not hide the status
        echo(f"FAILED: {message}")
    run.write_status(state="failed", finished=time.time(), message=message, bad_input=bad_input)
    return "failed"


def _process_start() -> float | None:
    try:
        import psutil

        return psutil.Process(os.getpid()).create_time()
    except Exception:
        return None


def _train(run: RunDirectory, echo: Callable[[str], None], find_lr: bool = False) -> str:
    config = run.config().validate()
    spec = get_backbone(config.backbone)

    report = load_dataset(config)
    write_atomic(run.dataset_path, json.dumps(report.to_dict()))
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
        config = config.replace(image_size=spec.auto_image_size(side))
        echo(f"Image size {config.image_size} px, chosen from the photos (typically {side} px on their shorter side).")
    run.write_status(image_size=config.image_size)
    arrays = _decode_splits(run, plan, config.image_size, echo)
    _write_splits(run, plan, arrays)
    class_names = plan.class_names
    train_x, train_y, _ = arrays["train"]
    val_x, val_y, _ = arrays["val"]

    import keras

    from core.callbacks import BestCheckpoint, CosineSchedule, EventStream, StopOnRequest
    from core.evaluation import evaluate_predictions
    from core.model import (
        build_classifier,
        compile_for_phase,
        count_trainable,
        finetune_mask,
        resolve_unfreeze,
        set_phase,
    )
    from core.pipeline import make_dataset
    from core.weights import build_base, resolve_weights

    keras.utils.set_random_seed(config.seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()  # same seed, same result (the page promises it)
    choice = resolve_weights(spec, config.image_size, config.weights)
    echo(f"Backbone {spec.label} at {config.image_size} px with {choice.description}.")
    resume = _resume_point(run)
    if resume is None:
        base = build_base(spec, config.image_size, choice)
        model = build_classifier(
            base,
            spec,
            num_classes=len(class_names),
            image_size=config.image_size,
            augmentation=config.augmentation,
            pooling=config.pooling,
            head_units=config.head_units,
            dropout=config.dropout,
            seed=config.seed,
            pretrained=choice.kind != "none",
        )
        run.write_status(base_layer=base.name)
    else:
        # The same model, with everything learned up to the last finished epoch.
        model = keras.models.load_model(run.last_checkpoint_path, safe_mode=True)
        base = model.get_layer(run.raw_status()["base_layer"])
        _truncate_history(run, resume["epochs_done"])
        echo(f"Resuming after epoch {resume['epochs_done']} (phase {resume['phase']}) from the last checkpoint.")
    freeze_bn = choice.kind != "none"
    unfreeze = resolve_unfreeze(spec, config.unfreeze)
    try:
        mask = finetune_mask(base, spec, unfreeze)
    except ValueError as error:
        raise RunFailed(str(error), bad_input=True) from None
    set_phase(model, base, 2, mask, freeze_bn)
    phase2_trainable = count_trainable(model)
    set_phase(model, base, 1, mask)
    phase1_trainable = count_trainable(model)

    batch_size = min(config.batch_size, len(train_x))
    class_weight = _class_weights(train_y, len(class_names), config.class_weights)
    has_val = len(val_x) > 0
    # The best epoch is the most accurate on validation images. Late in fine-tuning, validation loss
    # often rises (the model grows more confident) while accuracy still improves: measured on the
    # shared datasets, choosing by loss kept an earlier, less accurate epoch (docs/speed.md).
    monitor = "val_accuracy" if has_val else "accuracy"
    steps = math.ceil(len(train_x) / batch_size)
    cached = config.feature_cache and choice.kind != "none"
    feature_plan = _feature_plan(config, choice, model, base, mask, unfreeze, cached)
    echo(feature_plan["description"])
    run.write_status(
        weights=choice.description,
        weights_kind=choice.kind,
        unfreeze=unfreeze,
        class_names=class_names,
        total_params=int(model.count_params()),
        trainable_params_phase1=phase1_trainable,
        trainable_params_phase2=phase2_trainable,
        class_weights=class_weight is not None,
        images={k: int(len(v[0])) for k, v in arrays.items()},
        epochs_total=config.head_epochs + config.finetune_epochs,
        steps_per_epoch=steps,
        batch_size=batch_size,
        feature_mode=feature_plan["description"],
    )
    if find_lr:
        set_phase(model, base, 1, mask)
        fit_model, train_ds = None, None
        if cached:
            fit_model, train_ds, _ = _cached_phase_data(run, 1, feature_plan, arrays, batch_size, config, echo)
        if fit_model is None:
            fit_model = model
            train_ds = make_dataset(train_x, train_y, batch_size, shuffle=True, seed=config.seed)
        return _find_learning_rate(run, fit_model, train_ds, config, echo)
    run.best_checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    earlier = [row[monitor] for row in run.history() if isinstance(row.get(monitor), float)] if resume else []
    checkpoint = BestCheckpoint(
        run.best_checkpoint_path,
        model,
        monitor=monitor,
        initial_best=max(earlier) if earlier else None,  # a resumed run keeps its best so far
        min_interval=LAST_CHECKPOINT_SECONDS if cached else 0.0,
        save=lambda full_model, path: _save_atomic(full_model, path),
    )
    stopper = StopOnRequest(run.stop_path)
    epochs_done = resume["epochs_done"] if resume else 0
    outcome = "succeeded"
    # The first epoch leaves a checkpoint to resume from, unless epochs take moments (fast mode),
    # where saving would cost more than redoing them; every phase's end is saved either way.
    last_saved = [time.time() if cached else 0.0]
    phase_seconds = dict(run.raw_status().get("phase_seconds") or {}) if resume else {}
    phases = [
        (1, config.head_epochs, config.head_learning_rate, "training the new head (base frozen)"),
        (2, config.finetune_epochs, config.finetune_learning_rate, f"fine-tuning ({unfreeze} unfrozen)"),
    ]
    for phase, epochs, learning_rate, what in phases:
        phase_start, planned = epochs_done, epochs
        if resume and phase < resume["phase"]:
            continue
        if resume and phase == resume["phase"]:
            phase_start = resume["phase_start"]
            epochs = max(resume["phase_start"] + epochs - epochs_done, 0)
        if epochs <= 0:
            continue
        if phase == 2 and unfreeze == "none":
            echo("Phase 2 skipped: no base layers are set to unfreeze.")
            continue
        started = time.perf_counter()
        set_phase(model, base, phase, mask, freeze_bn)
        fit_model = None
        if cached:
            try:
                fit_model, train_ds, val_ds = _cached_phase_data(
                    run, phase, feature_plan, arrays, batch_size, config, echo
                )
            except RunStopped:
                if phase == 1 or not run.best_checkpoint_path.exists():
                    raise
                outcome = "stopped"  # stopped while phase 2 prepared: phase 1's best model stands
                break
        if fit_model is None:
            fit_model = model
            train_ds = make_dataset(train_x, train_y, batch_size, shuffle=True, seed=config.seed)
            val_ds = make_dataset(val_x, val_y, batch_size, shuffle=False) if has_val else None
        # The average spans about one epoch: long enough to smooth the last steps' noise, short
        # enough to follow the learning of a phase only a few epochs long.
        compile_for_phase(fit_model, config.optimizer, learning_rate, steps if config.average_weights else 0)
        trainable = count_trainable(model)
        echo(
            f"Phase {phase}: {what}, {epochs} epoch(s) at learning rate {learning_rate:g}, {trainable:,} trainable weights."
        )
        run.write_status(phase=phase, message=f"Phase {phase}: {what}", phase_epochs=epochs, epoch=epochs_done)

        def on_epoch(row, phase=phase, phase_start=phase_start, phase_end=epochs_done + epochs):
            echo(_epoch_line(row, config))
            fields = {"epoch": int(row["epoch"]), "last_epoch": row}
            # A save costs about 0.2 s: on small data that is a large share of an epoch, so the
            # resumable checkpoint is kept at most every LAST_CHECKPOINT_SECONDS (and at phase ends).
            if time.time() - last_saved[0] >= LAST_CHECKPOINT_SECONDS or int(row["epoch"]) >= phase_end:
                _save_atomic(model, run.last_checkpoint_path)
                last_saved[0] = time.time()
                fields["resume_point"] = {"phase": phase, "epochs_done": int(row["epoch"]), "phase_start": phase_start}
            run.write_status(**fields)

        stream = EventStream(
            run.events_path,
            run.history_path,
            phase=phase,
            steps_per_epoch=steps,
            batch_size=batch_size,
            epoch_offset=epochs_done,
            on_epoch=on_epoch,
            min_batch_interval=BATCH_EVENT_SECONDS if cached else 0.0,
        )
        # With weight averaging, the averaged weights are swapped in for validation and at each
        # epoch's end, so the stream, the checkpoints and early stopping all see the averaged model.
        swap = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.average_weights else []
        callbacks = swap + [stream, checkpoint, stopper, keras.callbacks.TerminateOnNaN()]
        if config.early_stopping_patience and epochs > 1:
            callbacks.append(
                # Phase 2 goes on from where phase 1 ended, not from phase 1's best epoch (Keras would restore
                # that at the end of every fit): on small validation sets the "best" epoch is often an early,
                # undertrained one. With `keep` best, the best checkpoint across both phases is what is kept.
                keras.callbacks.EarlyStopping(monitor=monitor, patience=config.early_stopping_patience)
            )
        if config.cosine_decay:
            # Phase 2 warms up over its first epoch: full-size first steps on freshly unfrozen layers
            # undo the head's work (hymenoptera at 3e-4: the training loss went from 0.37 to 0.93).
            callbacks.append(CosineSchedule(learning_rate, phase_start, planned, steps, warmup=phase == 2))
        elif config.reduce_lr_patience and epochs > 1:
            callbacks.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss" if has_val else "loss",
                    factor=0.3,
                    patience=config.reduce_lr_patience,
                    min_lr=1e-7,
                )
            )
        history = fit_model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs_done + epochs,
            initial_epoch=epochs_done,
            callbacks=callbacks,
            class_weight=class_weight,
            verbose=0,
        )
        epochs_done += len(history.history.get("loss", []))
        phase_seconds[str(phase)] = round(phase_seconds.get(str(phase), 0.0) + time.perf_counter() - started, 2)
        run.write_status(phase_seconds=phase_seconds)
        if stream.nan_seen:
            raise RunFailed(
                f"The loss became NaN (not a number) in phase {phase}: training diverged, usually because "
                f"the learning rate ({learning_rate:g}) is too high. Try one 10 times lower."
            )
        if stopper.stopped:
            outcome = "stopped"
            break

    keep = config.keep
    if keep == "auto":
        keep = "best" if len(val_x) >= BEST_NEEDS_VALIDATION else "final"
    kept = None
    if keep == "final" and outcome == "succeeded":
        # As training left it (a resumed run's last checkpoint is its final epoch); averaged when averaging is on.
        why = f" ({len(val_x)} validation photos are too few to pick an epoch by)" if config.keep == "auto" else ""
        echo(f"Keeping the final model{why}.")
        kept = "final"
    elif run.best_checkpoint_path.exists():
        model = keras.models.load_model(run.best_checkpoint_path, safe_mode=True)
        echo(f"Keeping the most accurate epoch on {'validation' if has_val else 'training'} images.")
        kept = "best"
    elif outcome == "stopped":
        run.write_status(
            state="stopped", finished=time.time(), message="Stopped before the first epoch finished: nothing was saved."
        )
        return "stopped"
    _save_atomic(model, run.model_path)
    run.write_status(kept=kept)

    split = "test" if len(arrays["test"][0]) else ("val" if has_val else "train")
    eval_x, eval_y, eval_paths = arrays[split]
    run.write_status(phase="evaluating", message=f"Evaluating on the {split} images")
    probabilities = model.predict(make_dataset(eval_x, None, batch_size, shuffle=False), verbose=0)
    evaluation = evaluate_predictions(eval_y, probabilities, class_names, eval_paths, split=split)
    evaluation["seconds"] = round(time.time() - (run.raw_status().get("started") or time.time()), 1)
    write_atomic(run.evaluation_path, json.dumps(evaluation, indent=1))
    where = "test" if split == "test" else f"{split} (there is no test split)"
    summary = f"{evaluation['accuracy']:.1%} accuracy on {evaluation['count']} {where} images."
    echo(summary)
    if outcome == "stopped":
        message = f"Stopped by request; the best checkpoint was kept. {summary}"
    else:
        which = {"final": ": the final model was kept", "best": ": its most accurate epoch was kept", None: ""}
        message = f"Finished{which[kept]}. {summary}"
    run.write_status(
        state=outcome, finished=time.time(), message=message, accuracy=evaluation["accuracy"], resume_requested=False
    )
    return outcome


def _find_learning_rate(run: RunDirectory, fit_model, train_ds, config: RunConfig, echo) -> str:
    """The learning-rate range test on what phase 1 would train; the model itself is not changed."""
    from core.lr_finder import sweep

    run.write_status(phase=1, message="Trying learning rates from 1e-6 to 1 on the new head")
    result = sweep(fit_model, train_ds, config.optimizer)
    write_atomic(run.path / "lr_find.json", json.dumps(result))
    suggestion = result["suggestion"]
    for rate, loss in list(zip(result["rates"], result["losses"], strict=True))[::20]:
        echo(f"learning rate {rate:.2e}  loss {loss:.4f}")
    if suggestion:
        message = (
            f"Suggested phase-1 learning rate: {suggestion:g} (a tenth of the rate where the loss was lowest). "
            f"The current setting is {config.head_learning_rate:g}."
        )
    else:
        message = "The loss blew up at once, so no rate can be suggested: try a lower batch size or check the data."
    echo(message)
    run.write_status(state="succeeded", finished=time.time(), message=message, suggestion=suggestion)
    return "succeeded"


def _feature_plan(config: RunConfig, choice, model, base, mask, unfreeze: str, cached: bool) -> dict:
    """Whether the frozen layers' output is cached, where the cut is, and how to say so plainly."""
    if not cached:
        why = (
            "random weights train from scratch, so no layer stays fixed"
            if choice.kind == "none"
            else "feature caching is turned off"
        )
        return {"description": f"Every image goes through the whole network in every epoch ({why})."}
    from core.features import find_cut, split_classifier, weights_identity

    views = config.feature_views if config.augmentation.enabled else 1
    cut = find_cut(base, mask) if config.finetune_epochs > 0 and unfreeze != "none" else ""
    parts = split_classifier(model, base, config.image_size, cut)
    if views > 1:
        how = f"{views} versions of each training photo (the original and {views - 1} randomly augmented)"
    elif config.augmentation.enabled:
        how = "the original photos only (1 view, so augmentation is not used)"
    else:
        how = "each photo once (augmentation is off)"
    description = f"Fast mode: the frozen layers run once, on {how}, and their output is reused in every epoch."
    if config.finetune_epochs > 0 and unfreeze != "none" and not cut:
        description += " Phase 2 runs the whole network (this unfreeze choice leaves no clean cut)."
    return {
        "description": description,
        "parts": parts,
        "views": views,
        "weights": weights_identity(choice.path) if choice.path else choice.kind,
    }


def _cached_phase_data(run: RunDirectory, phase: int, plan: dict, arrays: dict, batch_size: int, config, echo):
    """The model to fit and its datasets of cached features; (None, None, None) when phase 2 must train
    on images (no clean cut). Raises RunStopped when Stop is pressed while features are computed."""
    from core.features import ExtractionStopped, FeatureKey, extract, feature_dataset, images_digest

    parts = plan["parts"]
    if phase == 2 and not parts.cut:
        return None, None, None  # no clean cut: phase 2 trains on images
    started = time.perf_counter()
    reused = True
    features = {}

    def progress(done: int, total: int) -> None:
        run.write_status(message=f"Computing the frozen layers' output: {done:,} of {total:,} images")

    for split in ("train", "val"):
        images, _, paths = arrays[split]
        if not len(images):
            features[split] = None
            continue
        views = plan["views"] if split == "train" else 1
        key = FeatureKey(
            images=images_digest(list(paths), config.image_size),
            backbone=config.backbone,
            weights=plan["weights"],
            cut=parts.cut or f"pool:{config.pooling}",  # pooled features depend on the kind of pooling
            augmentation=json.dumps(dataclasses.asdict(config.augmentation), sort_keys=True) if views > 1 else "",
            views=views,
            seed=config.seed if views > 1 else 0,
        )
        if phase == 1 and parts.cut:  # one pass fills both caches: the head's now, the top's for phase 2
            pooled_key = dataclasses.replace(key, cut=f"{parts.cut}>pool:{config.pooling}")
            extractor, targets = parts.front_both, [("bottom", key), ("pooled", pooled_key)]
        else:
            extractor, targets = parts.front, [("bottom" if parts.cut else "pooled", key)]
        try:
            values, was_cached = extract(
                extractor,
                images,
                targets,
                augment=parts.augment,
                views=views,
                stop_requested=run.stop_path.exists,
                progress=progress,
            )
        except ExtractionStopped:
            raise RunStopped() from None
        reused = reused and was_cached
        features[split] = values[-1]  # what this phase trains on
    train_y, val_y = arrays["train"][1], arrays["val"][1]
    echo(
        ("Reused the cached output of the frozen layers" if reused else "Computed the frozen layers' output")
        + f" in {time.perf_counter() - started:.1f} s."
    )
    fit_model = parts.head if phase == 1 else parts.top_and_head
    train_ds = feature_dataset(features["train"], train_y, batch_size, shuffle=True, seed=config.seed)
    val_ds = feature_dataset(features["val"], val_y, batch_size, shuffle=False) if features["val"] is not None else None
    return fit_model, train_ds, val_ds


def _resume_point(run: RunDirectory) -> dict | None:
    """Where an interrupted run picks up, when it was asked to resume and has a last checkpoint."""
    status = run.raw_status()
    point = status.get("resume_point")
    if status.get("resume_requested") and point and run.last_checkpoint_path.exists():
        return point
    return None


def _truncate_history(run: RunDirectory, epochs_done: int) -> None:
    """Drop history rows past the last checkpoint (an epoch that ended as the process was killed)."""
    from core.callbacks import HISTORY_COLUMNS

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(row for row in run.history() if int(row["epoch"]) <= epochs_done)
    write_atomic(run.history_path, buffer.getvalue())


def _save_atomic(model, path: Path) -> None:
    """Save beside, then rename: a process killed mid-write leaves the previous checkpoint intact."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    model.save(tmp)
    os.replace(tmp, path)


def _decode_splits(run: RunDirectory, plan: SplitPlan, image_size: int, echo) -> dict:
    from core.pipeline import decode_images

    index = {name: k for k, name in enumerate(plan.class_names)}
    everything = [(split, item) for split in ("train", "val", "test") for item in getattr(plan, split)]
    started = time.time()
    last_update = [0.0]

    def progress(done: int, total: int) -> bool:
        if run.stop_requested():
            return False
        if time.time() - last_update[0] > 0.5 or done == total:
            last_update[0] = time.time()
            run.write_status(message=f"Preparing the images ({done} of {total})", prepared=done, to_prepare=total)
        return True

    try:
        pixels, failures = decode_images([item.path for _, item in everything], image_size, progress=progress)
    except InterruptedError:
        raise RunStopped() from None
    echo(f"Prepared {len(everything)} images at {image_size} px in {time.time() - started:.1f} s.")
    for position, reason in failures.items():
        echo(f"Left out {everything[position][1].path}: {reason}")
    arrays = {}
    for split in ("train", "val", "test"):
        rows = [k for k, (s, _) in enumerate(everything) if s == split and k not in failures]
        labels = np.array([index[everything[k][1].label] for k in rows], dtype=np.int32)
        paths = [everything[k][1].path for k in rows]
        if rows and rows == list(range(rows[0], rows[-1] + 1)):
            images = pixels[rows[0] : rows[-1] + 1]  # contiguous: stays memory-mapped
        else:
            images = pixels[rows] if rows else np.zeros((0, image_size, image_size, 3), np.uint8)
        arrays[split] = (images, labels, paths)
    return arrays


def _write_splits(run: RunDirectory, plan: SplitPlan, arrays: dict) -> None:
    used = {path for split in arrays.values() for path in split[2]}
    with open(run.splits_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=("split", "label", "path"))
        writer.writeheader()
        for row in plan.rows():
            if row["path"] in used:
                writer.writerow(row)


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
    return {int(c): float(w) for c, w in zip(classes, weights)}


def _epoch_line(row: dict, config: RunConfig) -> str:
    parts = [f"phase {row['phase']} epoch {row['epoch']}/{config.head_epochs + config.finetune_epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if row.get(key) is not None:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{row['seconds']:.1f} s")
    return "  ".join(parts)


def run_worker(run_path: str | Path) -> int:
    """Entry point of a worker process: wait for a training slot, then train."""
    from core.runs import wait_for_slot

    run = RunDirectory(run_path)
    # Training takes every core it can; a lower priority lets the dashboard that shares
    # the machine answer clicks at once while a run trains.
    os.nice(WORKER_NICENESS)
    slot = wait_for_slot(run)
    if slot is None:
        run.write_status(state="stopped", finished=time.time(), message="Stopped while waiting in the queue.")
        return 0
    try:
        state = train_run(run, echo=lambda line: print(line, flush=True))
    finally:
        slot.release()
    return 0 if state in ("succeeded", "stopped") else 1
