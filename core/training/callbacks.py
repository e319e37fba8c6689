"""Keras callbacks that carry training out to the run directory.

They only receive hook calls with a `logs` dict and write files; they never know how
the dashboard shows them, and the dashboard never touches the training.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import keras

from core.runs.directory import HISTORY_COLUMNS


class EventStream(keras.callbacks.Callback):
    """Appends one JSON line per batch and per epoch to `events.jsonl`, and rows to `history.csv`.

    Args:
        events_path: the JSON-lines file to append to.
        history_path: the CSV with one row per epoch (written with a header if new).
        phase: 1 (head) or 2 (fine-tune), stamped on every event and row.
        steps_per_epoch: batches per epoch, for progress and time left.
        batch_size: images per batch, for images per second.
        epoch_offset: epochs already done before this `fit` (epochs count across phases).
        on_epoch: optional hook called with each history row (e.g. to update the status).
        min_batch_interval: seconds between batch events (0 writes every batch).
    """

    def __init__(
        self,
        events_path: Path,
        history_path: Path,
        phase: int,
        steps_per_epoch: int,
        batch_size: int,
        epoch_offset: int = 0,
        on_epoch: Callable[[dict], None] | None = None,
        min_batch_interval: float = 0.0,
    ):
        super().__init__()
        self.events_path = Path(events_path)
        self.history_path = Path(history_path)
        self.phase = phase
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.epoch_offset = epoch_offset
        self.on_epoch = on_epoch
        self.min_batch_interval = min_batch_interval
        self.nan_seen = False
        self._handle: IO[str] | None = None
        self._epoch_start = 0.0
        self._last_batch_event = 0.0
        self._epoch = epoch_offset

    def emit(self, kind: str, **fields) -> None:
        if self._handle is None:
            self._handle = open(self.events_path, "a", buffering=1)
        record = {"t": round(time.time(), 3), "type": kind, "phase": self.phase, **fields}
        self._handle.write(json.dumps(record, default=_plain) + "\n")

    def on_train_begin(self, logs=None):
        self.emit("phase_start", steps=self.steps_per_epoch, epoch=self.epoch_offset)

    def on_epoch_begin(self, epoch, logs=None):
        # Keras passes the absolute epoch index (initial_epoch onwards), so it counts across phases.
        self._epoch = epoch + 1
        self._epoch_start = time.time()
        self.emit("epoch_start", epoch=epoch + 1, steps=self.steps_per_epoch)

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        if _has_nan(logs):
            self.nan_seen = True
        now = time.time()
        last = batch + 1 >= self.steps_per_epoch
        if not last and now - self._last_batch_event < self.min_batch_interval:
            return
        self._last_batch_event = now
        elapsed = max(now - self._epoch_start, 1e-9)
        self.emit(
            "batch",
            epoch=self._epoch,
            batch=batch + 1,
            steps=self.steps_per_epoch,
            images_per_second=round((batch + 1) * self.batch_size / elapsed, 2),
            **_metrics(logs),
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if _has_nan(logs):
            self.nan_seen = True
        row = {
            "phase": self.phase,
            "epoch": epoch + 1,
            "seconds": round(time.time() - self._epoch_start, 3),
            "learning_rate": _learning_rate(self.model),
        }
        row.update({k: v for k, v in _metrics(logs).items() if k in HISTORY_COLUMNS})
        new = not self.history_path.exists()
        with open(self.history_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        self.emit("epoch", **row)
        if self.on_epoch:
            self.on_epoch(row)

    def on_train_end(self, logs=None):
        self.emit("phase_end")
        if self._handle:
            self._handle.close()
            self._handle = None


class BestCheckpoint(keras.callbacks.Callback):
    """Keeps the best epoch's full classifier on disk (by `monitor`: lower loss or higher accuracy).

    Keras's ModelCheckpoint saves the model being fitted; here that may be only the top of
    the classifier (training on cached features), so `full_model` is what is saved. When
    epochs are very short, saves are spaced `min_interval` seconds apart:
    the best weights are kept in memory meanwhile and always written when `fit` ends.
    `save(model, path)` should write atomically (beside, then rename), so a full disk or a
    kill mid-save leaves the previous best intact.
    """

    def __init__(
        self,
        path: str | Path,
        full_model,
        monitor: str = "val_loss",
        initial_best: float | None = None,
        min_interval: float = 0.0,
        save: Callable = lambda model, path: model.save(path),
    ):
        super().__init__()
        self.path = Path(path)
        self.full_model = full_model
        self.monitor = monitor
        self.best = initial_best
        self.min_interval = min_interval
        self.save = save
        self._pending = None
        self._last_save = 0.0

    def _better(self, value: float) -> bool:
        """Higher accuracy (a tie goes to the later, longer-trained epoch) or lower loss."""
        if self.best is None:
            return True
        return value >= self.best if "acc" in self.monitor else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)) or not self._better(float(value)):
            return
        self.best = float(value)
        if time.time() - self._last_save >= self.min_interval:
            self._write(None)
        else:
            self._pending = self.full_model.get_weights()

    def on_train_end(self, logs=None):
        if self._pending is not None:
            self._write(self._pending)

    def _write(self, weights) -> None:
        current = None
        if weights is not None:
            current = self.full_model.get_weights()
            self.full_model.set_weights(weights)
        try:
            self.save(self.full_model, self.path)
        finally:
            if current is not None:
                self.full_model.set_weights(current)
        self._pending = None
        self._last_save = time.time()


class StopOnRequest(keras.callbacks.Callback):
    """Stops training after the current batch once `stop_path` exists (the Stop button's file)."""

    def __init__(self, stop_path: Path):
        super().__init__()
        self.stop_path = Path(stop_path)
        self.stopped = False

    def on_train_batch_end(self, batch, logs=None):
        if self.stop_path.exists():
            self.stopped = True
            self.model.stop_training = True


def cosine_schedule(peak: float, total_steps: int, warmup_steps: int = 0):
    """Keras's `CosineDecay`: from a tenth of `peak` up to `peak` over `warmup_steps` (if any), then down
    along a half cosine to `peak` / 100 at the phase's last step."""
    decay_steps = max(total_steps - warmup_steps - 1, 1)  # the last step lands exactly on the floor
    if warmup_steps:
        return keras.optimizers.schedules.CosineDecay(
            peak / 10, decay_steps, alpha=0.01, warmup_target=peak, warmup_steps=warmup_steps
        )
    return keras.optimizers.schedules.CosineDecay(peak, decay_steps, alpha=0.01)


class ResumableSchedule(keras.callbacks.Callback):
    """Sets the learning rate before every batch from a Keras schedule, counting steps from the phase's start.

    A schedule handed to the optimizer counts the optimizer's own steps, which restart at 0
    with the fresh optimizer of a resumed run; counting here from the epoch number places a
    resumed phase at its point on the curve. Epochs are numbered across both phases, so
    `phase_start` is the epochs done before this phase began.
    """

    def __init__(self, schedule, phase_start: int, steps_per_epoch: int, total_steps: int):
        super().__init__()
        self.phase_start = phase_start
        self.steps_per_epoch = steps_per_epoch
        # The whole curve at once: one vectorised call instead of one eager call per batch (2 ms each).
        steps = keras.ops.arange(max(total_steps, 1))
        self.rates = keras.ops.convert_to_numpy(keras.ops.vectorized_map(schedule, steps)).astype(float)
        self._epoch = phase_start

    def rate(self, step: int) -> float:
        """The learning rate at `step`, counted from the phase's first batch."""
        return float(self.rates[min(step, len(self.rates) - 1)])

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        step = (self._epoch - self.phase_start) * self.steps_per_epoch + batch
        self.model.optimizer.learning_rate = self.rate(step)


def _metrics(logs: dict) -> dict:
    return {key: _plain(value) for key, value in logs.items() if key != "learning_rate"}


def _plain(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def _has_nan(logs: dict) -> bool:
    loss = logs.get("loss")
    try:
        return loss is not None and not math.isfinite(float(loss))
    except (TypeError, ValueError):
        return False


def _learning_rate(model) -> float | None:
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:
        return None
