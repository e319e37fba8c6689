"""A learning-rate finder for the head phase (L. Smith's range test, as in fastai).

The learning rate grows exponentially from `start` to `end`, one training batch per step,
on a fresh copy of the model (the real one is untouched); the loss is smoothed as it goes
and the sweep stops once it has clearly blown up. The suggestion is a tenth of the rate
where the smoothed loss was lowest: past that point training becomes unstable.
In fast mode the head trains on cached features, so a few hundred steps take seconds.
"""

from __future__ import annotations

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

    from core.model import compile_for_phase

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
