"""Cached features: the frozen part of the base runs once per image, not once per epoch.

In phase 1 the whole base is frozen, so the head trains on the pooled base output of
each image. In phase 2 only the top of the base trains, so the output of the frozen
bottom (at the *cut*, the input of the first unfrozen layer) is stored, and only the top
and the head run each epoch. With augmentation on, each training image is stored as
several *views*: the original and randomly augmented copies; each epoch picks one view
per image at random.

The small models here share their layers with the full classifier, so whatever they
learn is in the full model, which is still the one that is saved and evaluated.
Caches are `.npy` files (float16) under `STUDIO_CACHE/features`, keyed by the images,
backbone, weights, image size, cut, augmentation and number of views.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.pipeline import IN_MEMORY_BYTES, cache_home, files_digest, release_pages

FEATURE_VERSION = 1


class ExtractionStopped(Exception):
    """The stop file appeared while features were being computed."""


@dataclass
class ClassifierParts:
    """A built classifier taken apart around its frozen bottom.

    Attributes:
        front: uint8 pixels at the image size -> preprocessing -> frozen bottom output (or
            pooled base output when there is no cut).
        front_both: pixels -> [bottom output, pooled base output] in one pass (phase 1 fills
            both caches at once); None without a cut.
        augment: the classifier's own augmentation layers, or None.
        head: pooled base output -> class probabilities (what phase 1 trains).
        top_and_head: bottom output -> class probabilities (what phase 2 trains); None without a cut.
        cut: the first base layer of the top, or "" when the whole base stays frozen.
    """

    front: object
    front_both: object
    augment: object
    head: object
    top_and_head: object
    cut: str


def find_cut(base, mask: list[bool]) -> str:
    """The base layer where the cached bottom ends: at or before the first unfrozen layer.

    The cut must be a single tensor that everything above depends on alone (no skip
    connection may jump over it), so it moves down until a sub-model can be built there.
    Returns "" when nothing unfreezes.
    """
    import keras

    if True not in mask:
        return ""
    for index in range(mask.index(True), 0, -1):
        layer = base.layers[index]
        if isinstance(layer.input, (list, tuple)):
            continue
        try:
            keras.Model(layer.input, base.output)
        except ValueError:
            continue
        return layer.name
    return ""


def split_classifier(model, base, image_size: int, cut: str) -> ClassifierParts:
    """Sub-models of `model` (sharing its layers) for training on cached features."""
    import keras

    pixels = keras.Input((image_size, image_size, 3), name="pixels")
    x = pixels
    for name in ("preprocess_scale", "preprocess"):
        try:
            x = model.get_layer(name)(x)
        except ValueError:
            continue  # this family has no such layer
    pool = model.get_layer("pool")
    head = keras.Model(pool.output, model.output, name="head")
    augment = _get_layer(model, "augmentation")
    if not cut:
        front = keras.Model(pixels, pool(base(x, training=False)), name="frozen_base")
        return ClassifierParts(front, None, augment, head, None, "")
    cut_tensor = base.get_layer(cut).input
    bottom = keras.Model(base.input, cut_tensor, name="bottom")
    top = keras.Model(cut_tensor, base.output, name="top")
    bottom_output = bottom(x, training=False)
    front = keras.Model(pixels, bottom_output, name="frozen_bottom")
    front_both = keras.Model(pixels, [bottom_output, pool(top(bottom_output, training=False))], name="frozen_base")
    features = keras.Input(cut_tensor.shape[1:], name="bottom_features")
    top_and_head = keras.Model(features, head(pool(top(features, training=False))), name="top_and_head")
    return ClassifierParts(front, front_both, augment, head, top_and_head, cut)


def _get_layer(model, name: str):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


@dataclass(frozen=True)
class FeatureKey:
    """Everything cached features depend on; a change in any of it makes a new cache."""

    images: str  # digest of the image files (path, size, mtime) in order, and the image size
    backbone: str
    weights: str  # the weights file (path, size, mtime), or "none"
    cut: str
    augmentation: str
    views: int
    seed: int

    def digest(self) -> str:
        text = json.dumps({"version": FEATURE_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:24]


def images_digest(paths: list[str], image_size: int) -> str:
    return files_digest(paths, f"{image_size}")


def weights_identity(path: str | None) -> str:
    if not path:
        return "none"
    try:
        stat = os.stat(path)
        return f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        return str(path)


def features_dir() -> Path:
    return cache_home() / "features"


def extract(
    model,
    images: np.ndarray,
    targets: list[tuple[str, FeatureKey]],
    augment=None,
    views: int = 1,
    batch_size: int = 64,
    stop_requested: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[np.ndarray], bool]:
    """`model` applied to every image, `views` times (view 0 as is, the others through `augment`).

    `targets` names each output of `model` ("bottom", "pooled") with the key of its cache,
    so one pass can fill several caches. Returns the arrays, each of shape (views, N, ...) in
    float16 and memory-mapped from the cache, and whether they all came from the cache.
    Files are stored atomically: a stopped or failed extraction leaves nothing.

    Raises:
        ExtractionStopped: `stop_requested()` became true.
    """
    folder = features_dir()
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{what}-{key.digest()}.npy" for what, key in targets]
    if all(path.exists() for path in paths):
        return [np.load(path, mmap_mode="r") for path in paths], True
    count = len(images)
    outputs = model.outputs
    tmps = [path.with_name(f".{path.stem}.{os.getpid()}.npy") for path in paths]
    arrays = [
        np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float16, shape=(views, count, *(int(d) for d in output.shape[1:]))
        )
        for tmp, output in zip(tmps, outputs, strict=True)
    ]
    total, done, last_report = views * count, 0, 0.0
    try:
        for view in range(views):
            for start in range(0, count, batch_size):
                if stop_requested():
                    raise ExtractionStopped()
                batch = np.asarray(images[start : start + batch_size], dtype="float32")
                if view and augment is not None:
                    batch = augment(batch, training=True)
                results = model.predict_on_batch(batch)
                for array, result in zip(arrays, results if len(arrays) > 1 else [results], strict=True):
                    array[view, start : start + len(batch)] = np.asarray(result, dtype=np.float16)
                done += len(batch)
                if (start // batch_size) % 16 == 15:  # read and written pages leave this process's memory
                    release_pages(images)
                    for array in arrays:
                        array.flush()
                        release_pages(array)
                if progress and (time.time() - last_report > 1.0 or done == total):
                    progress(done, total)
                    last_report = time.time()
        for array, tmp, path in zip(arrays, tmps, paths, strict=True):
            array.flush()
            os.replace(tmp, path)
    finally:
        del arrays
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
    return [np.load(path, mmap_mode="r") for path in paths], False


def feature_dataset(features: np.ndarray, labels: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
    """Batches of (float32 features, labels), one random view per image per epoch.

    Small caches are gathered in the graph from memory; large ones from the memory-mapped
    file, batch by batch, so memory stays flat.
    """
    import tensorflow as tf

    views, count = int(features.shape[0]), int(features.shape[1])
    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    indices = indices.batch(batch_size)
    label_table = tf.constant(np.asarray(labels, dtype=np.int32))
    if features.nbytes <= IN_MEMORY_BYTES:
        table = tf.constant(np.ascontiguousarray(features).reshape(views * count, *features.shape[2:]))

        def gather(batch):
            view = tf.random.uniform(tf.shape(batch), 0, views, dtype=tf.int64, seed=seed) if views > 1 else 0
            rows = tf.gather(table, view * count + batch)
            return tf.cast(rows, tf.float32), tf.gather(label_table, batch)

        return indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    rng = np.random.default_rng(seed)
    item_shape = tuple(features.shape[2:])

    def read(batch):
        order = np.sort(batch)
        view = rng.integers(0, views, size=len(order)) if views > 1 else np.zeros(len(order), int)
        rows = np.asarray(features[view, order], dtype=np.float32)
        release_pages(features)  # memory stays flat however large the cache
        return rows, np.asarray(labels, dtype=np.int32)[order]

    def load(batch):
        rows, batch_labels = tf.numpy_function(read, [batch], (tf.float32, tf.int32))
        rows.set_shape((None, *item_shape))
        batch_labels.set_shape((None,))
        return rows, batch_labels

    return indices.map(load, num_parallel_calls=2).prefetch(tf.data.AUTOTUNE)
