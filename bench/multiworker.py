"""Try `tf.distribute.MultiWorkerMirroredStrategy` with Keras 3: two worker processes on localhost.

It follows TensorFlow's "Multi-worker training with Keras" tutorial, which keras-team/keras#20585
reports failing under Keras 3: each worker gets a `TF_CONFIG` naming both, builds and compiles the
same model inside the strategy's scope and fits it on its shard of the same `tf.data` pipeline.
Then the Studio's own classifier (a MobileNetV2 with random weights, 32 px) is fitted the same way.
Prints, per worker and per model, whether it trained and the error if not.

    .venv/bin/python bench/multiworker.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def worker(which: str) -> None:
    """One worker: fit the tutorial's model, then the Studio's, and print one JSON line for each."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.config.disable_traceback_filtering()  # so the error names the Keras line that fails
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    rng = np.random.default_rng(0)
    results = []
    for name in ("tutorial", "studio"):
        started = time.perf_counter()
        try:
            if name == "tutorial":
                images = rng.random((512, 28, 28), dtype=np.float32)
                labels = rng.integers(0, 10, 512)
                with strategy.scope():
                    model = keras.Sequential(
                        [
                            keras.Input(shape=(28, 28)),
                            keras.layers.Reshape((28, 28, 1)),
                            keras.layers.Conv2D(32, 3, activation="relu"),
                            keras.layers.Flatten(),
                            keras.layers.Dense(128, activation="relu"),
                            keras.layers.Dense(10),
                        ]
                    )
                    model.compile(
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        optimizer=keras.optimizers.SGD(learning_rate=0.001),
                        metrics=["accuracy"],
                    )
            else:
                sys.path.insert(0, str(REPO))
                from core.network.backbones import get_backbone
                from core.network.config import AugmentationConfig
                from core.network.model import build_classifier, compile_for_phase

                images = rng.integers(0, 255, (256, 32, 32, 3)).astype(np.uint8)
                labels = rng.integers(0, 2, 256)
                spec = get_backbone("mobilenet_v2_0.35")
                with strategy.scope():
                    base = spec.build(32, weights=None)
                    model = build_classifier(base, spec, 2, 32, AugmentationConfig(), pretrained=False)
                    compile_for_phase(model, "adam", 1e-3, average_over=8)
            dataset = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(512, seed=0).repeat().batch(64)
            history = model.fit(dataset, epochs=2, steps_per_epoch=4, verbose=0)
            losses = [round(float(x), 4) for x in history.history["loss"]]
            results.append({"model": name, "worker": which, "ok": True, "losses": losses})
        except Exception as error:  # the point is to record what fails
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            shown = lines[0][:120] + (" ... " + lines[-1][:300] if len(lines) > 1 else "") if lines else ""
            frames = traceback.extract_tb(error.__traceback__)
            where = next(
                (f for f in reversed(frames) if "/keras/" in f.filename and "traceback" not in f.filename), frames[-1]
            )
            place = f"{where.filename.split('site-packages/')[-1]}:{where.lineno} ({where.name})"
            message = f"{type(error).__name__} in {place}: {shown}"
            results.append({"model": name, "worker": which, "ok": False, "error": message})
        results[-1]["seconds"] = round(time.perf_counter() - started, 1)
        print(json.dumps(results[-1]), flush=True)


def main() -> None:
    if len(sys.argv) > 1:
        worker(sys.argv[1])
        return
    import keras
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; two workers on localhost")
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    processes = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            TF_CPP_MIN_LOG_LEVEL="3",
            PYTHONPATH=str(REPO),
        )
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, str(index)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for index, process in enumerate(processes):
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            print(f"worker {index}: no result in {TIMEOUT} s (killed)")
        for line in out.splitlines():
            if line.startswith("{"):
                print(line)
        if process.returncode:
            tail = [line for line in err.splitlines() if line.strip()][-3:]
            print(f"worker {index} exited with {process.returncode}: " + " | ".join(tail))


if __name__ == "__main__":
    main()
