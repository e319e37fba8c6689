"""What streaming progress costs: epoch time with and without the run-directory writes.

Trains the same small head on random features (flowers5's phase 1 in fast mode: 3,018
vectors of 1,280 numbers, batch 32, 95 batches an epoch) and a MobileNetV2 0.35 on images,
first with no callbacks, then with what a run writes every epoch: the event stream
(`events.jsonl`, `history.csv`) and the status. Prints the median seconds per epoch of 5 alternated
measurements, the overhead as a share of an epoch, and what one checkpoint save costs (a run saves the resumable checkpoint
at most every 30 s and at phase ends; in fast mode the best checkpoint likewise).

    .venv/bin/python bench/overhead.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def epoch_seconds(model, dataset, epochs: int, callbacks: list) -> float:
    model.fit(dataset, epochs=1, verbose=0, callbacks=callbacks)  # trace and warm up outside the timing
    started = time.perf_counter()
    model.fit(dataset, epochs=epochs, verbose=0, callbacks=callbacks)
    return (time.perf_counter() - started) / epochs


def run_callbacks(folder: Path, model, steps: int, batch_size: int) -> list:
    """The event stream and the per-epoch status, as a run writes them (checkpoints are timed apart)."""
    from core.network.config import RunConfig
    from core.runs.directory import RunDirectory
    from core.training.callbacks import EventStream
    from core.training.phases import BATCH_EVENT_SECONDS

    run = RunDirectory.create(folder, RunConfig(), run_id=f"r{time.time_ns()}")
    stream = EventStream(
        run.events_path,
        run.history_path,
        phase=1,
        steps_per_epoch=steps,
        batch_size=batch_size,
        on_epoch=lambda row: run.update_status(epoch=int(row["epoch"]), last_epoch=row),
        min_batch_interval=BATCH_EVENT_SECONDS,
    )
    return [stream]


def save_seconds(model, folder: Path) -> float:
    from core.base.files import save_model_atomic

    started = time.perf_counter()
    for k in range(3):
        save_model_atomic(model, folder / f"checkpoint{k}.keras")
    return (time.perf_counter() - started) / 3


def main() -> None:
    import keras
    import tensorflow as tf

    from core.network.backbones import BACKBONES

    rng = np.random.default_rng(0)
    cases = []
    features = rng.normal(size=(3018, 1280)).astype("float32")
    labels = rng.integers(0, 5, 3018)
    head = keras.Sequential([keras.Input((1280,)), keras.layers.Dropout(0.2), keras.layers.Dense(5, "softmax")])
    head.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    cases.append(
        ("head on cached features", head, tf.data.Dataset.from_tensor_slices((features, labels)).batch(32), 10)
    )

    spec = BACKBONES["mobilenet_v2_0.35"]
    base = spec.build(96, weights=None)
    images = rng.integers(0, 255, size=(512, 96, 96, 3)).astype("float32")
    net = keras.Sequential(
        [keras.Input((96, 96, 3)), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(5)]
    )
    net.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    image_data = tf.data.Dataset.from_tensor_slices((images, rng.integers(0, 5, 512))).batch(32)
    cases.append(("whole network on images", net, image_data, 5))

    print(f"{'case':26} {'plain s/epoch':>13} {'with writes':>12} {'overhead':>9} {'one checkpoint s':>17}")
    with tempfile.TemporaryDirectory() as folder:
        for name, model, dataset, epochs in cases:
            steps = int(dataset.cardinality())
            plain_times, written_times = [], []
            for _ in range(5):  # alternated, so warm-up and machine noise fall on both sides
                plain_times.append(epoch_seconds(model, dataset, epochs, []))
                callbacks = run_callbacks(Path(folder), model, steps, 32)
                written_times.append(epoch_seconds(model, dataset, epochs, callbacks))
            plain, written = statistics.median(plain_times), statistics.median(written_times)
            print(
                f"{name:26} {plain:13.3f} {written:12.3f} {100 * (written - plain) / plain:8.1f}% "
                f"{save_seconds(model, Path(folder)):17.3f}"
            )


if __name__ == "__main__":
    main()
