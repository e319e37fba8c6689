"""Which model a run keeps (final, best checkpoint or first; `core.runs.status.keep_rule`), and its evaluation
on the test photos with calibration."""

from __future__ import annotations

import json
import time

from core.base.files import save_model_atomic, write_atomic
from core.network.config import BEST_NEEDS_VALIDATION
from core.runs.directory import RunDirectory
from core.runs.status import KEPT_MODEL, RunState, Stage, keep_choice
from core.training.session import Session


def keep_model(session: Session, outcome: RunState):
    """The model the run keeps, and which it is ("final" or "best"); (None, None) when nothing was saved.

    `keep` auto keeps the best epoch only with at least BEST_NEEDS_VALIDATION validation photos.
    A stopped run keeps its most accurate epoch.
    """
    import keras

    config, echo = session.config, session.echo
    validation = len(session.data["val"].images)
    keep = keep_choice(config.keep, validation, BEST_NEEDS_VALIDATION)
    if session.head_enough and outcome is RunState.SUCCEEDED and session.run.first_model_path.exists():
        echo("Keeping the first model: fine-tuning did not improve on it.")
        return keras.models.load_model(session.run.first_model_path, safe_mode=True), "first"
    if keep == "final" and outcome is RunState.SUCCEEDED:
        # As training left it (a resumed run's last checkpoint is its final epoch); averaged when averaging is on.
        why = f" ({validation} validation photos are too few to pick an epoch by)" if config.keep == "auto" else ""
        last = last_epoch(session.run)
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


def keepable(session: Session, model):
    """The model as the run keeps it: in float32 when it trained in mixed precision, so the model file and its
    exports compute the same on any processor (checkpoints keep the mixed model, to resume as it trained)."""
    from core.network.distribute import float32_copy

    return float32_copy(model) if session.placed.mixed else model


def last_epoch(run: RunDirectory) -> dict:
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


def score_model(session: Session, model) -> dict:
    """`model` on the test photos (else validation, else training): the evaluation, as `evaluation.json` holds it."""
    from core.data.pipeline import make_dataset
    from core.training.evaluation import evaluate_predictions

    run = session.run
    split = next(name for name in ("test", "val", "train") if len(session.data[name].images) or name == "train")
    photos = session.data[split]
    probabilities = model.predict(make_dataset(photos.images, None, session.batch_size, shuffle=False), verbose=0)
    class_names = run.raw_status().class_names
    return evaluate_predictions(photos.labels, probabilities, class_names, photos.paths, split=split)


def evaluate(session: Session, model, kept: str, outcome: RunState) -> RunState:
    """Save the kept model, score it on the test photos (else validation, else training) and finish the status."""
    from core.training.calibration import calibrate_model, calibrate_stored

    run = session.run
    save_model_atomic(keepable(session, model), run.model_path)
    run.update_status(kept=kept, stage=Stage.EVALUATING, message="Evaluating on the photos kept aside")
    scored = run.evaluation()
    if kept == "first" and scored and scored.get("model") == "first":
        evaluation = scored  # scored on the same photos as phase 1 ended
    else:
        evaluation = score_model(session, model)
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
    from core.training.evaluation import photos_of

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
