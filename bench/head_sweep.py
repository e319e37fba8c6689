"""What the frozen features alone can do, and which head training gets closest to it.

Extracts MobileNetV2 0.5's pooled features (shared ImageNet weights) once per dataset split, then
1. fits scikit-learn's logistic regression on them (standardised; the ceiling of a linear head), and
2. trains the tool's kind of head (Dropout, then a softmax Dense layer; Adam on a cosine schedule,
   weights averaged over about an epoch) over a grid of learning rates, dropouts and epochs,
   3 seeds each, scoring the last epoch on the test split.

The split is the one `bench/recipes.py` uses. docs/recipes.md gives the numbers it printed.

    STUDIO_SHARED=../shared .venv/bin/python bench/head_sweep.py --dataset hymenoptera
    STUDIO_SHARED=../shared .venv/bin/python bench/head_sweep.py --dataset flowers5 --probe-only --sizes 128 160 224
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.speed import DATASETS, WEIGHTS, materialise_split  # noqa: E402


def pooled_features(split_dir: Path, size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import keras

    base = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=0.5, include_top=False, weights=str(WEIGHTS), pooling="avg"
    )
    out = {}
    for split in ("train", "val", "test"):
        data = keras.utils.image_dataset_from_directory(
            split_dir / split, image_size=(size, size), batch_size=64, shuffle=False, verbose=False
        )
        xs, ys = [], []
        for images, labels in data:
            xs.append(base(keras.applications.mobilenet_v2.preprocess_input(images), training=False).numpy())
            ys.append(labels.numpy())
        out[split] = (np.concatenate(xs), np.concatenate(ys))
    return out


def probe(features) -> dict[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    (train_x, train_y), (test_x, test_y) = features["train"], features["test"]
    scaler = StandardScaler().fit(train_x)
    scores = {}
    for c in (0.1, 1.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(scaler.transform(train_x), train_y)
        scores[c] = float(model.score(scaler.transform(test_x), test_y))
    return scores


def head(features, learning_rate: float, dropout: float, epochs: int, seed: int) -> float:
    import keras

    (train_x, train_y), (test_x, test_y) = features["train"], features["test"]
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((train_x.shape[1],))
    outputs = keras.layers.Dense(int(train_y.max()) + 1, activation="softmax")(keras.layers.Dropout(dropout)(inputs))
    model = keras.Model(inputs, outputs)
    steps = int(np.ceil(len(train_x) / 32))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps, alpha=0.01)
    optimizer = keras.optimizers.Adam(schedule, use_ema=True, ema_momentum=1 - 1 / max(steps, 2))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    model.fit(train_x, train_y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return float((model.predict(test_x, verbose=0).argmax(1) == test_y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="hymenoptera")
    parser.add_argument("--sizes", type=int, nargs="+", default=[160])
    parser.add_argument("--probe-only", action="store_true", help="only the logistic regression")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    args = parser.parse_args()
    if not WEIGHTS.is_file():
        sys.exit(f"The shared weights are not at {WEIGHTS} (set STUDIO_SHARED to the shared/ folder).")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as folder:
        split_dir = Path(folder) / "split"
        materialise_split(DATASETS[args.dataset], split_dir, 42)
        for size in args.sizes:
            features = pooled_features(split_dir, size)
            scores = probe(features)
            print(
                f"{args.dataset} {size} px, logistic regression on frozen pooled features: "
                + ", ".join(f"C={c:g} {s:.3f}" for c, s in scores.items()),
                flush=True,
            )
            if args.probe_only:
                continue
            print(f"{'head LR':>8} {'dropout':>8} {'epochs':>7} {'mean acc':>9} {'spread':>7}")
            for learning_rate in (1e-3, 1e-2, 3e-2):
                for dropout in (0.2, 0.5, 0.7):
                    for epochs in (10, 30, 60):
                        accuracies = [head(features, learning_rate, dropout, epochs, seed) for seed in args.seeds]
                        print(
                            f"{learning_rate:8g} {dropout:8.1f} {epochs:7d} {np.mean(accuracies):9.3f} "
                            f"{np.ptp(accuracies):7.3f}",
                            flush=True,
                        )


if __name__ == "__main__":
    main()
