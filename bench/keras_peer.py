"""The plain-Keras peer: the two-phase recipe written the way the Keras transfer-learning guide writes it.

The frozen base sits inside the model, `image_dataset_from_directory` with `cache()` and
`prefetch()`, phase 1 trains the head, phase 2 unfreezes the base from a named layer on
and fine-tunes at 1e-5. It reads a folder with `train/`, `val/` and `test/` class folders
and prints one JSON line: seconds per phase, test accuracy. Run by `bench/speed.py`.

    python bench/keras_peer.py --data SPLIT_DIR --weights FILE.h5 --alpha 0.5 --image-size 160 \
        --head-epochs 10 --finetune-epochs 10 --unfreeze-from block_13_expand
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with train/, val/ and test/ class folders")
    parser.add_argument("--weights", required=True, help="MobileNetV2 no-top .h5 weights file")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--head-epochs", type=int, default=10)
    parser.add_argument("--finetune-epochs", type=int, default=10)
    parser.add_argument(
        "--unfreeze-from",
        default="block_13_expand",
        help="first base layer unfrozen in phase 2 ('all': the whole base)",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(args.seed)
    size = (args.image_size, args.image_size)

    def load(split: str, shuffle: bool):
        return keras.utils.image_dataset_from_directory(
            f"{args.data}/{split}", image_size=size, batch_size=args.batch_size, shuffle=shuffle, seed=args.seed
        )

    train_ds, val_ds, test_ds = load("train", True), load("val", False), load("test", False)
    num_classes = len(train_ds.class_names)
    train_ds = train_ds.cache().prefetch(tf.data.AUTOTUNE)
    val_ds = val_ds.cache().prefetch(tf.data.AUTOTUNE)
    test_ds = test_ds.cache().prefetch(tf.data.AUTOTUNE)

    data_augmentation = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1)])
    base_model = keras.applications.MobileNetV2(
        weights=args.weights, include_top=False, input_shape=(*size, 3), alpha=args.alpha
    )
    base_model.trainable = False

    inputs = keras.Input(shape=(*size, 3))
    x = data_augmentation(inputs)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1)(x)  # MobileNetV2's preprocess_input
    x = base_model(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    model = keras.Model(inputs, outputs)

    model.compile(optimizer=keras.optimizers.Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(train_ds, epochs=args.head_epochs, validation_data=val_ds, verbose=0)
    phase1 = time.perf_counter() - start

    base_model.trainable = True
    names = [layer.name for layer in base_model.layers]
    fine_tune_at = 0 if args.unfreeze_from == "all" else names.index(args.unfreeze_from)
    for layer in base_model.layers[:fine_tune_at]:
        layer.trainable = False
    for layer in base_model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(train_ds, epochs=args.finetune_epochs, validation_data=val_ds, verbose=0)
    phase2 = time.perf_counter() - start

    loss, accuracy = model.evaluate(test_ds, verbose=0)
    print(json.dumps({"phase1_seconds": phase1, "phase2_seconds": phase2, "test_accuracy": accuracy}))


if __name__ == "__main__":
    main()
