"""A learning-rate finder for the head phase (L. Smith's range test, as in fastai).

The learning rate grows exponentially from `start` to `end`, one training batch per step,
on a fresh copy of the model (the real one is untouched); the loss is smoothed as it goes
and the sweep stops once it has clearly blown up. The suggestion is a tenth of the rate
where the smoothed loss was lowest: past that point training becomes unstable.
In fast mode the head trains on cached features, so a few hundred steps take seconds.
"""

from __future__ import annotations

import json
import math

import numpy as np


def sweep(model, dataset, optimizer: str, start: float = 1e-6, end: float = 1.0, steps: int = 200) -> dict:
    """Train a clone of `model` one batch per learning rate; return rates, smoothed losses and a suggestion.

    Args:
        model: the model phase 1 fits (its weights are not changed).
        dataset: batches of (inputs, labels); repeated as needed.
        optimizer: adam, rmsprop or sgd, as in the config.
    """
    import keras

    from core.network.model import compile_for_phase

    trial = keras.models.clone_model(model)  # same layers and trainable flags
    trial.set_weights(model.get_weights())  # and the same starting point (a pretrained base stays pretrained)
    compile_for_phase(trial, optimizer, start)
    factor = (end / start) ** (1.0 / max(steps - 1, 1))
    rates, losses = [], []
    average, best = 0.0, math.inf
    batches = iter(dataset.repeat())
    for step in range(steps):
        rate = start * factor**step
        trial.optimizer.learning_rate = rate
        x, y = next(batches)
        loss = float(np.asarray(trial.train_on_batch(x, y, return_dict=True)["loss"]))
        if not math.isfinite(loss):
            break
        average = 0.98 * average + 0.02 * loss
        smoothed = average / (1 - 0.98 ** (step + 1))
        rates.append(rate)
        losses.append(smoothed)
        best = min(best, smoothed)
        if step > 10 and smoothed > 4 * best:
            break
    return {"rates": rates, "losses": losses, "suggestion": suggest(rates, losses)}


def suggest(rates: list[float], losses: list[float]) -> float | None:
    """A tenth of the rate at the lowest smoothed loss (None when the sweep was too short to tell)."""
    if len(rates) < 10:
        return None
    lowest = int(np.argmin(losses))
    return float(f"{rates[lowest] / 10:.1g}")


def find_learning_rate(run, echo=print):
    """Prepare `run` exactly as training would, then sweep phase 1's learning rate instead of training.

    Writes `lr_find.json` (rates, losses, suggestion) and ends the run's status with the
    suggestion in words. Failures end in the status as they do for training.
    """
    from core.training.failures import run_guarded

    return run_guarded(run, _find, echo)


def _find(run, echo):
    import time

    from core.base.files import write_atomic
    from core.data.pipeline import make_dataset
    from core.network.freezing import set_phase
    from core.runs.status import RunState, Stage
    from core.training.build import build_or_resume
    from core.training.failures import RunStopped
    from core.training.features import ExtractionStopped, phase_inputs
    from core.training.prepare import prepare
    from core.training.session import start_session

    config = run.config().validate()
    prepared = prepare(run, config, echo)
    session = start_session(run, prepared, build_or_resume(run, prepared, echo), echo)
    set_phase(session.classifier.base, 1, session.classifier.mask)
    inputs = None
    if session.features.cached:
        try:
            inputs = phase_inputs(
                session.features,
                1,
                session.data,
                session.config,
                session.batch_size,
                run.stop_path.exists,
                lambda d, t: None,
            )
        except ExtractionStopped:
            raise RunStopped() from None
    if inputs is None:
        train = session.data["train"]
        fit_model, dataset = (
            session.classifier.model,
            make_dataset(train.images, train.labels, session.batch_size, True, seed=config.seed),
        )
    else:
        fit_model, dataset = inputs.model, inputs.train
    run.update_status(stage=Stage.HEAD, message="Trying learning rates from 1e-6 to 1 on the new head")
    result = sweep(fit_model, dataset, config.optimizer)
    write_atomic(run.path / "lr_find.json", json.dumps(result))
    for rate, loss in list(zip(result["rates"], result["losses"], strict=True))[::20]:
        echo(f"learning rate {rate:.2e}  loss {loss:.4f}")
    suggestion = result["suggestion"]
    if suggestion:
        message = (
            f"Suggested phase-1 learning rate: {suggestion:g} (a tenth of the rate where the loss was lowest). "
            f"The current setting is {config.head_learning_rate:g}."
        )
    else:
        message = "The loss blew up at once, so no rate can be suggested: try a lower batch size or check the data."
    echo(message)
    run.update_status(
        state=RunState.SUCCEEDED, stage=Stage.DONE, finished=time.time(), message=message, suggestion=suggestion
    )
    return RunState.SUCCEEDED
