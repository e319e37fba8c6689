"""Running the phases: each one's inputs (photos or stored features) and callbacks, and the first model kept as
phase 1 ends."""

from __future__ import annotations

import json
import time

from core.base.files import save_model_atomic, write_atomic
from core.network.choices import FINETUNE_PATIENCE, HEAD_FITS
from core.network.config import BEST_NEEDS_VALIDATION, RunConfig
from core.runs.status import ResumePoint, RunState, Stage, keep_rule
from core.training.failures import RunFailed, RunStopped
from core.training.keep import keepable, last_epoch, score_model
from core.training.prepare import adopt_estimate
from core.training.session import LAST_CHECKPOINT_SECONDS, PhasePlan, Session, plan_phases

BATCH_EVENT_SECONDS = 0.25  # on stored features batches take milliseconds: stream at most 4 a second


def run_phases(session: Session) -> RunState:
    """Each planned phase in turn, from where a resumed run left off; STOPPED if Stop was pressed."""
    resume = session.classifier.resume
    scale = session.placed.learning_rate_scale(session.config.optimizer)
    plans = plan_phases(session.config, session.classifier.unfreeze, scale)
    for plan in plans:
        if resume and plan.phase < resume.phase:
            continue
        phase_start = resume.phase_start if resume and plan.phase == resume.phase else session.epochs_done
        epochs = phase_start + plan.epochs - session.epochs_done
        adopt_estimate(session.run, session.run.config(), session.report)
        if plan.phase == 2 and not resume and (skipped := skip_finetuning(session)):
            session.echo(skipped)
            session.run.update_status(finetune_decision=skipped)
            session.head_enough = True
            break
        if epochs > 0 and run_phase(session, plan, phase_start, epochs):
            return RunState.STOPPED
        if plan.phase == 1 and len(plans) > 1 and not session.run.raw_status().first_model:
            keep_first_model(session)
    return RunState.SUCCEEDED


def skip_finetuning(session: Session) -> str:
    """Why phase 2 is skipped, in one plain sentence; "" when it runs. It is skipped (`finetune_until` "pays",
    with BEST_NEEDS_VALIDATION validation photos) where the new head alone already tells apart HEAD_FITS of its
    training photos, judged on the stored features of the original photos (no dropout, a matrix product)."""
    import numpy as np

    validation = len(session.data["val"].images)
    parts, pooled = session.features.parts, session.pooled
    if session.config.finetune_until != "pays" or validation < BEST_NEEDS_VALIDATION or not parts or not pooled:
        return ""
    labels = session.data["train"].labels
    answers = np.argmax(parts.head.predict(np.asarray(pooled["train"], np.float32), verbose=0), axis=1)
    fits = float(np.mean(answers == labels))
    head = session.run.raw_status().first_model.get("val_accuracy")
    on_val = f" ({head:.1%} of the validation photos)" if isinstance(head, float) else ""
    if fits < HEAD_FITS:
        session.echo(
            f"The new head alone tells apart {fits:.1%} of its training photos{on_val}: fine-tuning adapts the "
            "network's features to these classes."
        )
        return ""
    return (
        f"Fine-tuning was skipped: the new head alone already tells apart {fits:.1%} of its training photos"
        f"{on_val}, so the network's features suit these classes, and fine-tuning, which changes them, would "
        "mostly cost time."
    )


def keep_first_model(session: Session) -> None:
    """The head-trained model, usable the moment phase 1 ends: saved, scored on the test photos and offered
    while phase 2 runs. At the end the final model replaces it, unless the first did better on enough
    validation photos to tell them apart (`keep_model`)."""
    run, model = session.run, session.classifier.model
    started = time.perf_counter()
    kept = keepable(session, model)
    save_model_atomic(kept, run.first_model_path)
    save_model_atomic(kept, run.model_path)
    last = last_epoch(run)
    evaluation = score_model(session, model)
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
    from core.network.freezing import set_phase

    run, classifier = session.run, session.classifier
    started = time.perf_counter()
    set_phase(classifier.base, plan.phase, classifier.mask, classifier.freeze_batch_norm)
    try:
        fit_model, train_ds, val_ds, lazy = _phase_inputs(session, plan)
    except RunStopped:
        if plan.phase == 1 or not run.best_checkpoint_path.exists():
            raise
        return True  # stopped while phase 2 prepared: phase 1's best model stands
    try:
        return _fit_phase(session, plan, phase_start, epochs, fit_model, train_ds, val_ds, lazy, started)
    finally:
        if lazy is not None:
            lazy.close()


def _fit_phase(session: Session, plan: PhasePlan, phase_start, epochs, fit_model, train_ds, val_ds, lazy, started):
    from core.network.freezing import count_trainable
    from core.network.model import compile_for_phase
    from core.training.callbacks import StopOnRequest

    run, config, classifier = session.run, session.config, session.classifier
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
    stream, callbacks, judge = _phase_callbacks(session, plan, phase_start, epochs, stopper)
    if lazy is not None:  # before the stream, so an epoch's time includes making its version of the photos
        callbacks.insert(0, lazy.callback())
    history = fit_model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=session.epochs_done + epochs,
        initial_epoch=session.epochs_done,
        callbacks=callbacks,
        class_weight=session.class_weight,
        verbose=0,
    )
    ran = len(history.history.get("loss", []))
    session.epochs_done += ran
    if plan.phase == 2 and not stopper.stopped:
        head = run.raw_status().first_model.get("val_accuracy")
        scores = history.history.get("val_accuracy", [])
        stopped_early = judge is not None and ran < epochs
        decision = finetune_decision(
            config.finetune_until, len(session.data["val"].images), ran, plan.epochs, head, scores, stopped_early
        )
        session.head_enough = bool(stopped_early and isinstance(head, float) and scores and max(scores) <= head)
        session.echo(decision)
        run.update_status(finetune_decision=decision)
        if lazy is not None:
            made = lazy.ready - 1
            session.echo(
                f"Phase 2 made {made} altered version{'' if made == 1 else 's'} of each training photo as its "
                f"epochs began, in {lazy.seconds:.1f} s."
            )
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
    """The model to fit, its training and validation batches (stored features in fast mode, else photos), and
    the altered versions phase 2 still has to make (`LazyViews`, or None)."""
    from core.data.pipeline import make_dataset
    from core.training.features import ExtractionStopped, phase_inputs

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
            return inputs.model, inputs.train, inputs.val, inputs.lazy
    train, val = session.data["train"], session.data["val"]
    train_ds = make_dataset(train.images, train.labels, session.batch_size, shuffle=True, seed=session.config.seed)
    val_ds = make_dataset(val.images, val.labels, session.batch_size, shuffle=False) if len(val.images) else None
    return session.classifier.model, train_ds, val_ds, None


def _phase_callbacks(session: Session, plan: PhasePlan, phase_start: int, epochs: int, stopper):
    """The event stream, checkpoints, stop and NaN guards, and the learning-rate schedule of one phase."""
    import keras

    from core.training.callbacks import EventStream, ResumableSchedule, cosine_schedule

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
    judge = None
    validation = len(session.data["val"].images)
    if plan.phase == 2 and config.finetune_until == "pays" and validation >= BEST_NEEDS_VALIDATION:
        # Fine-tuning must beat the new head alone (its validation accuracy, the baseline) and then its own best:
        # FINETUNE_PATIENCE epochs in a row that do neither end it. Measured in docs/speed.md.
        head = session.run.raw_status().first_model.get("val_accuracy")
        judge = keras.callbacks.EarlyStopping(
            monitor=session.monitor, patience=FINETUNE_PATIENCE, baseline=head if isinstance(head, float) else None
        )
        callbacks.append(judge)
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
    return stream, callbacks, judge


def finetune_decision(
    until: str,
    validation: int,
    ran: int,
    planned: int,
    head: float | None,
    history: list[float],
    stopped_early: bool,
) -> str:
    """What phase 2 decided and why, in one plain sentence (the Train page, the log and the report say it).

    Args:
        until: the `finetune_until` setting; validation: the run's validation photos.
        ran, planned: the phase-2 epochs run (since it last started) and set.
        head: the new head's validation accuracy as phase 1 ended; history: each phase-2 epoch's.
        stopped_early: the judge of `finetune_until` "pays" ended the phase.
    """
    best = max(history) if history else None
    epochs = f"{planned} epoch{'' if planned == 1 else 's'}"
    if stopped_early and best is not None and head is not None and best <= head:
        return (
            f"Fine-tuning stopped after {ran} of {epochs}: it did not improve on the new head alone "
            f"({best:.1%} of the validation photos at best, against {head:.1%}), so it ended there."
        )
    if stopped_early and best is not None:
        return (
            f"Fine-tuning stopped after {ran} of {epochs}: it no longer improved the validation photos "
            f"({best:.1%} at best{f', against {head:.1%} for the new head alone' if head is not None else ''})."
        )
    gain = (
        f" (from {head:.1%} with the new head alone to {best:.1%} at best)"
        if head is not None and best is not None
        else ""
    )
    if until == "pays" and validation < BEST_NEEDS_VALIDATION:
        return (
            f"Fine-tuning ran all {epochs}{gain}: {validation} validation photos are too few to tell when it stops "
            f"paying ({BEST_NEEDS_VALIDATION} are needed), so it was not stopped early."
        )
    if until == "pays" and best is not None and head is not None and best <= head:
        return (
            f"Fine-tuning ran all {epochs} without improving on the new head alone ({best:.1%} of the validation "
            f"photos at best, against {head:.1%})."
        )
    if until == "pays":
        return (
            f"Fine-tuning ran all {epochs}: it improved the validation photos{gain} and never went "
            f"{FINETUNE_PATIENCE} epochs in a row without improving."
        )
    return f"Fine-tuning ran all {epochs}, as set{gain}."


def _epoch_line(row: dict, config: RunConfig) -> str:
    parts = [f"phase {row['phase']} epoch {row['epoch']}/{config.head_epochs + config.finetune_epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if row.get(key) is not None:
            parts.append(f"{key} {row[key]:.4f}")
    parts.append(f"{row['seconds']:.1f} s")
    return "  ".join(parts)
