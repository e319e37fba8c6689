"""Callbacks called directly, as Keras would, with no fit at all."""

import csv
import json
import math

import keras
import pytest

from core.training.callbacks import EventStream, StopOnRequest


class _FakeModel:
    def __init__(self):
        self.optimizer = keras.optimizers.Adam(0.01)
        self.stop_training = False


@pytest.fixture
def stream(tmp_path):
    s = EventStream(
        tmp_path / "events.jsonl", tmp_path / "history.csv", phase=2, steps_per_epoch=3, batch_size=4, epoch_offset=5
    )
    s.set_model(_FakeModel())
    return s


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batches_and_epochs_become_events_and_history_rows(stream, tmp_path):
    stream.on_train_begin()
    stream.on_epoch_begin(5)
    for batch in range(3):
        stream.on_train_batch_end(batch, logs={"loss": 1.0 / (batch + 1), "accuracy": 0.5})
    stream.on_epoch_end(5, logs={"loss": 0.4, "accuracy": 0.8, "val_loss": 0.5, "val_accuracy": 0.75})
    stream.on_train_end()
    events = _events(tmp_path / "events.jsonl")
    assert [e["type"] for e in events] == [
        "phase_start",
        "epoch_start",
        "batch",
        "batch",
        "batch",
        "epoch",
        "phase_end",
    ]
    batch = events[3]
    assert batch["phase"] == 2 and batch["epoch"] == 6 and batch["batch"] == 2 and batch["steps"] == 3
    assert batch["loss"] == 0.5 and batch["images_per_second"] > 0
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert len(rows) == 1
    row = rows[0]
    assert (row["phase"], row["epoch"], row["val_accuracy"]) == ("2", "6", "0.75")
    assert float(row["seconds"]) >= 0 and math.isclose(float(row["learning_rate"]), 0.01, rel_tol=1e-6)


def test_second_epoch_appends_without_a_second_header(stream, tmp_path):
    for epoch in (5, 6):
        stream.on_epoch_begin(epoch)
        stream.on_epoch_end(epoch, logs={"loss": 0.1})
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0].startswith("phase,epoch,seconds") and len(lines) == 3


def test_nan_loss_is_noticed_and_written_as_null(stream, tmp_path):
    stream.on_epoch_begin(0)
    stream.on_train_batch_end(0, logs={"loss": float("nan")})
    assert stream.nan_seen
    stream.on_train_end()
    assert _events(tmp_path / "events.jsonl")[-2]["loss"] is None


def test_batch_events_can_be_throttled(tmp_path):
    s = EventStream(
        tmp_path / "e.jsonl", tmp_path / "h.csv", 1, steps_per_epoch=100, batch_size=1, min_batch_interval=3600
    )
    s.set_model(_FakeModel())
    s.on_epoch_begin(0)
    for batch in range(100):
        s.on_train_batch_end(batch, logs={"loss": 1.0})
    s.on_train_end()
    batches = [e for e in _events(tmp_path / "e.jsonl") if e["type"] == "batch"]
    assert [b["batch"] for b in batches] == [1, 100]  # the first, then the epoch's last


def test_stop_request_sets_stop_training_after_the_batch(tmp_path):
    callback = StopOnRequest(tmp_path / "stop")
    model = _FakeModel()
    callback.set_model(model)
    callback.on_train_batch_end(0)
    assert not model.stop_training
    (tmp_path / "stop").write_text("now")
    callback.on_train_batch_end(1)
    assert model.stop_training and callback.stopped


class _WeightsModel:
    """Stands in for the full classifier: weights to snapshot, and a record of what was saved."""

    def __init__(self):
        self.weights = [0]
        self.saved = []

    def get_weights(self):
        return list(self.weights)

    def set_weights(self, weights):
        self.weights = list(weights)


def test_best_checkpoint_saves_the_full_model_of_the_most_accurate_epoch(tmp_path):
    from core.training.callbacks import BestCheckpoint

    full = _WeightsModel()
    checkpoint = BestCheckpoint(
        tmp_path / "best.keras", full, "val_accuracy", save=lambda model, path: full.saved.append(model.weights[0])
    )
    for epoch, accuracy in enumerate([0.5, 0.7, 0.6, 0.7, float("nan")], start=1):
        full.weights = [epoch]
        checkpoint.on_epoch_end(epoch, {"val_accuracy": accuracy})
    assert full.saved == [1, 2, 4]  # a tie goes to the later epoch; NaN never counts


def test_best_checkpoint_spaces_out_saves_and_writes_the_pending_best_at_the_end(tmp_path):
    from core.training.callbacks import BestCheckpoint

    full = _WeightsModel()
    checkpoint = BestCheckpoint(
        tmp_path / "best.keras",
        full,
        "val_loss",
        min_interval=3600,
        save=lambda model, path: full.saved.append(model.weights[0]),
    )
    for epoch, loss in enumerate([0.9, 0.5, 0.4, 0.8], start=1):
        full.weights = [epoch]
        checkpoint.on_epoch_end(epoch, {"val_loss": loss})
    assert full.saved == [1]  # epochs 2 and 3 improved, but within the interval
    checkpoint.on_train_end()
    assert full.saved == [1, 3] and full.weights == [4]  # the best was saved; training's weights are back
