"""Cached features: the frozen part of the base runs once per image, not once per epoch.

In phase 1 the whole base is frozen, so the head trains on the pooled base output of
each image. In phase 2 only the top of the base trains, so the output of the frozen
bottom (at the *cut*, the input of the first unfrozen layer) is stored, and only the top
and the head run each epoch. With augmentation on, each training image is stored as
several *views*: the original and randomly augmented copies; each epoch picks one view
per image at random. When phase 2 follows, phase 1 reads the originals only, and phase 2
makes one more augmented view as each of its epochs begins (`LazyViews`): a phase 2 that
ends early has made only the views it used.

The small models here share their layers with the full classifier, so whatever they
learn is in the full model, which is still the one that is saved and evaluated.
Caches are `.npy` files (float16) under `STUDIO_CACHE/features`, keyed by the images,
backbone, weights, image size, cut, augmentation and number of views.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.base.files import atomic_path, cache_home
from core.data.pipeline import IN_MEMORY_BYTES, LabelledImages, files_digest, release_pages

FEATURE_VERSION = 2  # 2: augmentation settings written as flips and degrees


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

    front: Any
    front_both: Any
    augment: Any
    head: Any
    top_and_head: Any
    cut: str


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
class FeaturePlan:
    """How each phase gets its inputs: stored outputs of the frozen layers (fast mode) or the photos.

    Attributes:
        cached: fast mode is on (pretrained weights and the switch on).
        description: the mode in plain words, and why.
        views: versions of each training photo stored (the original and augmented copies).
        parts: the classifier taken apart around its frozen bottom (None when not cached).
        weights: what the frozen layers' weights are (the file and its date), part of every cache key.
    """

    cached: bool
    description: str
    views: int = 1
    parts: ClassifierParts | None = None
    weights: str = "none"

    def key(self, images: LabelledImages, config, training: bool) -> FeatureKey:
        """The cache key of this split's features (training photos get every view, others one)."""
        views = self.views if training else 1
        assert self.parts is not None, "only a cached plan has keys"
        return FeatureKey(
            images=images_digest(list(images.paths), config.image_size),
            backbone=config.backbone,
            weights=self.weights,
            cut=self.parts.cut or f"pool:{config.pooling}",  # pooled features depend on the kind of pooling
            augmentation=json.dumps(asdict(config.augmentation), sort_keys=True) if views > 1 else "",
            views=views,
            seed=config.seed if views > 1 else 0,
            precision=self.parts.front.dtype_policy.name,  # mixed float16 computes them differently
        )


def plan_features(config, weights_path: str | None, model, base, mask: list[bool], finetunes: bool) -> FeaturePlan:
    """Whether the frozen layers' output is stored, where the cut is, and how to say so plainly.

    Args:
        weights_path: the pretrained weights file; None for random weights, where no layer stays fixed.
        finetunes: phase 2 will run (it has epochs and unfreezes something).
    """
    if not config.fast_mode or weights_path is None:
        why = (
            "random weights train from scratch, so no layer stays fixed"
            if config.fast_mode
            else "feature caching is turned off"
        )
        return FeaturePlan(False, f"Every image goes through the whole network in every epoch ({why}).")
    from core.network.freezing import find_cut

    views = config.feature_views if config.augmentation.enabled else 1
    cut = find_cut(base, mask) if finetunes else ""
    if views > 1 and cut:
        how = "each photo"
    elif views > 1:
        how = f"{views} versions of each training photo (the original and {views - 1} randomly altered copies)"
    elif config.augmentation.enabled:
        how = "the original photos only (no altered copies)"
    else:
        how = "each photo once (augmentation is off)"
    description = (
        f"Fast mode: the pretrained network reads {how} once, and every epoch reuses what it saw, so training "
        "takes seconds."
    )
    if views > 1 and cut:
        description += (
            f" Phase 2 adds up to {views - 1} randomly altered version{'s' if views > 2 else ''} of each training "
            f"photo ({views} versions in all), one as each of its epochs begins."
        )
    if finetunes and not cut:
        description += " Phase 2 runs the whole network (this unfreeze choice leaves no clean cut)."
    parts = split_classifier(model, base, config.image_size, cut)
    return FeaturePlan(True, description, views, parts, weights_identity(weights_path))


@dataclass
class PhaseInputs:
    """What one phase fits: the model (the head, or the top and head) and its batches of stored features."""

    model: Any
    train: Any
    val: Any | None
    reused: bool
    # Phase 1: the pooled features of the original photos (view 0), by split: the `pool` layer's output
    # for as long as the network below it is frozen (calibration reuses them).
    pooled: dict[str, np.ndarray | None] | None = None
    # Phase 2: the altered versions still to be made, one more as each epoch begins (None: all are stored).
    lazy: LazyViews | None = None


def phase_inputs(
    plan: FeaturePlan,
    phase: int,
    data: dict[str, LabelledImages],
    config,
    batch_size: int,
    stop_requested: Callable[[], bool],
    progress: Callable[[int, int], None],
) -> PhaseInputs | None:
    """Stored features for `phase`, computed first if no cache has them; None when phase 2 must train
    on photos (no clean cut).

    Raises:
        ExtractionStopped: Stop was pressed while features were being computed.
    """
    parts = plan.parts
    assert parts is not None, "stored features are for a cached plan"
    if phase == 2 and not parts.cut:
        return None
    features: dict[str, np.ndarray | None] = {}
    lazy: LazyViews | None = None
    reused = True
    for split in ("train", "val"):
        images = data[split]
        if not len(images.images):
            features[split] = None
            continue
        # Phase 1 reads the original photos only when phase 2 follows (on flowers5 the head scored 0.718 from them,
        # 0.711 from 8 versions), and phase 2 makes its altered versions as its epochs use them (`LazyViews`).
        key = plan.key(images, config, training=split == "train" and (phase == 2 or not parts.cut))
        if phase == 2 and split == "train" and key.views > 1 and not cache_file("bottom", key).exists():
            original_key = plan.key(images, config, training=False)
            values, was_cached = extract(
                parts.front, images.images, [("bottom", original_key)], stop_requested=stop_requested, progress=progress
            )
            lazy = LazyViews(values[0], images.images, parts.front, parts.augment, key, stop_requested)
            reused = reused and was_cached
            features[split] = None
            continue
        if phase == 1 and parts.cut:  # one pass fills both caches: the head's now, the top's for phase 2
            pooled = replace(key, cut=f"{parts.cut}>pool:{config.pooling}")
            extractor, targets = parts.front_both, [("bottom", key), ("pooled", pooled)]
        else:
            extractor, targets = parts.front, [("bottom" if parts.cut else "pooled", key)]
        values, was_cached = extract(
            extractor,
            images.images,
            targets,
            augment=parts.augment,
            views=key.views,
            stop_requested=stop_requested,
            progress=progress,
        )
        reused = reused and was_cached
        features[split] = values[-1]  # what this phase trains on
    val, train = data["val"], features["train"]
    originals = {split: array[0] if array is not None else None for split, array in features.items()}
    if lazy is not None:
        train_ds = lazy_dataset(lazy, data["train"].labels, batch_size, seed=config.seed)
    else:
        assert train is not None, "a run always has training photos"
        train_ds = feature_dataset(train, data["train"].labels, batch_size, shuffle=True, seed=config.seed)
    return PhaseInputs(
        pooled=originals if phase == 1 else None,
        model=parts.head if phase == 1 else parts.top_and_head,
        train=train_ds,
        lazy=lazy,
        val=feature_dataset(features["val"], val.labels, batch_size, shuffle=False)
        if features["val"] is not None
        else None,
        reused=reused,
    )


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
    precision: str = "float32"  # the frozen layers' dtype policy

    def digest(self) -> str:
        fields = asdict(self)
        if fields["precision"] == "float32":
            del fields["precision"]  # caches made before the precision was part of the key stay valid
        text = json.dumps({"version": FEATURE_VERSION, **fields}, sort_keys=True)
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
    paths = [cache_file(what, key) for what, key in targets]
    if all(path.exists() for path in paths):
        return [np.load(path, mmap_mode="r") for path in paths], True
    with contextlib.ExitStack() as files:  # each file appears under its name only if all were written
        tmps = [files.enter_context(atomic_path(path)) for path in paths]
        arrays = [
            np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.float16, shape=(views, len(images), *(int(d) for d in output.shape[1:]))
            )
            for tmp, output in zip(tmps, model.outputs, strict=True)
        ]
        _fill(model, images, arrays, augment, batch_size, stop_requested, progress)
        for array in arrays:
            array.flush()
        del arrays
    return [np.load(path, mmap_mode="r") for path in paths], False


def cache_file(what: str, key: FeatureKey) -> Path:
    """Where the features `what` ("bottom", "pooled") of `key` are stored."""
    return features_dir() / f"{what}-{key.digest()}.npy"


class LazyViews:
    """Phase 2's training features with the altered versions made as they are first used: view 0 (the
    original photos, stored by phase 1) from the start, and one more randomly altered version of every photo
    as each epoch begins, until `key.views` exist. A phase that stops early has made only the versions it
    used. Once all are made they are stored under `key`, so a later run with the same photos and settings
    reuses them; an unfinished set is deleted (`close`).

    Attributes:
        ready: how many versions exist.
        fresh: the version made as this epoch began, which the whole epoch trains on (as augmentation on the fly
            would give every epoch new versions); None once all exist, when each photo's version is drawn at random.
    """

    def __init__(self, originals: np.ndarray, images: np.ndarray, front, augment, key: FeatureKey, stop_requested):
        self.images, self.front, self.augment, self.key = images, front, augment, key
        self.stop_requested = stop_requested
        self.path = cache_file("bottom", key)
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}-{id(self)}.tmp.npy")
        shape = (key.views, *originals.shape[1:])
        self.array = np.lib.format.open_memmap(self._tmp, mode="w+", dtype=np.float16, shape=shape)
        self.array[0] = originals[0]
        self.ready = 1
        self.fresh: int | None = None
        self.seconds = 0.0  # spent making versions
        # Where the versions fit in memory, the batches gather them in the graph from a variable the new versions
        # are written into (read through Python, an epoch took 1.5 times as long on flowers5's phase 2). Under a
        # distribution strategy a variable would be one per replica, so the batches read through Python there.
        self.table: Any = None
        self._ready_var: Any = None
        self._fresh_var: Any = None
        import tensorflow as tf

        if self.array.nbytes <= IN_MEMORY_BYTES and not tf.distribute.has_strategy():
            count = self.array.shape[1]
            self.table = tf.Variable(tf.zeros((key.views * count, *shape[2:]), tf.float16), trainable=False)
            self.table[:count].assign(np.asarray(originals[0]))
            self._ready_var = tf.Variable(1, dtype=tf.int64, trainable=False)
            self._fresh_var = tf.Variable(-1, dtype=tf.int64, trainable=False)

    def add_view(self) -> bool:
        """Make the next altered version of every photo; False when all exist or Stop was pressed (the phase's
        stop callback then ends the epoch at its first batch)."""
        self.fresh = None
        if self._fresh_var is not None:
            self._fresh_var.assign(-1)
        if self.ready >= self.key.views:
            return False
        started = time.perf_counter()
        try:
            _fill(self.front, self.images, [self.array], self.augment, 64, self.stop_requested, None, [self.ready])
        except ExtractionStopped:
            return False
        self.fresh = self.ready
        self.ready += 1
        if self.table is not None:
            count = self.array.shape[1]
            self.table[self.fresh * count : self.ready * count].assign(np.asarray(self.array[self.fresh]))
            self._ready_var.assign(self.ready)
            self._fresh_var.assign(self.fresh)
        self.seconds += time.perf_counter() - started
        if self.ready == self.key.views:
            self.array.flush()
            os.replace(self._tmp, self.path)  # the memory map stays valid: the same file under its final name
        return True

    def callback(self):
        """A Keras callback that makes one more version as each epoch begins, before its batches are read."""
        import keras

        views = self

        class MakeViews(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                views.add_view()

        return MakeViews()

    def close(self) -> None:
        """Delete an unfinished set of versions (a finished one stays, stored for later runs)."""
        self._tmp.unlink(missing_ok=True)


def lazy_dataset(views: LazyViews, labels: np.ndarray, batch_size: int, seed: int):
    """Batches of (float32 features, labels): the version made as the epoch began, or once all exist each photo's
    drawn at random (read batch by batch, so what `add_view` made as the epoch began is what it reads)."""
    if views.table is None:
        return feature_dataset(
            views.array, labels, batch_size, shuffle=True, seed=seed, views_ready=lambda: (views.ready, views.fresh)
        )
    import tensorflow as tf

    count = int(views.array.shape[1])
    indices = _index_batches(count, batch_size, shuffle=True, seed=seed)
    label_table = tf.constant(np.asarray(labels, dtype=np.int32))
    table, ready, fresh = views.table, views._ready_var, views._fresh_var

    def gather(batch):
        drawn = tf.random.uniform(tf.shape(batch), 0, ready.read_value(), dtype=tf.int64, seed=seed)
        now = fresh.read_value()
        view = tf.where(now >= 0, tf.fill(tf.shape(batch), now), drawn)
        return tf.cast(tf.gather(table, view * count + batch), tf.float32), tf.gather(label_table, batch)

    return indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _fill(model, images, arrays, augment, batch_size, stop_requested, progress, which=None) -> None:
    """Write `model`'s outputs for every image and view into `arrays` (view 0 as is, the others augmented);
    `which`: the views to fill (all by default)."""
    import tensorflow as tf

    views, count = arrays[0].shape[:2]
    which = list(range(views)) if which is None else list(which)
    total, done, last_report = len(which) * count, 0, 0.0
    # Under a MirroredStrategy each step's batch is split across the devices, each getting `batch_size`.
    # `predict_on_batch` would hand every replica the whole batch, so a distributed model predicts on a dataset.
    replicas = model.distribute_strategy.num_replicas_in_sync
    batch_size *= replicas
    for view in which:
        for start in range(0, count, batch_size):
            if stop_requested():
                raise ExtractionStopped()
            batch = np.asarray(images[start : start + batch_size], dtype="float32")
            if view and augment is not None:
                batch = augment(batch, training=True)
            if replicas == 1:
                results = model.predict_on_batch(batch)
            else:
                results = model.predict(tf.data.Dataset.from_tensor_slices(batch).batch(len(batch)), verbose=0)
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


def feature_dataset(
    features: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int = 0,
    views_ready: Callable[[], tuple[int, int | None]] | None = None,
):
    """Batches of (float32 features, labels), one random view per image per epoch.

    Small caches are gathered in the graph from memory; large ones from the memory-mapped
    file, batch by batch, so memory stays flat. `views_ready`: while views are still being made
    (`LazyViews`), how many exist and the one every photo takes now (None: drawn among those).
    """
    import tensorflow as tf

    views, count = int(features.shape[0]), int(features.shape[1])
    indices = _index_batches(count, batch_size, shuffle, seed)
    label_table = tf.constant(np.asarray(labels, dtype=np.int32))
    if features.nbytes <= IN_MEMORY_BYTES and views_ready is None:
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
        ready, fresh = views_ready() if views_ready else (views, None)
        if fresh is not None:
            view = np.full(len(order), fresh)
        else:
            view = rng.integers(0, ready, size=len(order)) if ready > 1 else np.zeros(len(order), int)
        rows = np.asarray(features[view, order], dtype=np.float32)
        release_pages(features)  # memory stays flat however large the cache
        return rows, np.asarray(labels, dtype=np.int32)[order]

    def load(batch):
        rows, batch_labels = tf.numpy_function(read, [batch], (tf.float32, tf.int32))
        rows.set_shape((None, *item_shape))
        batch_labels.set_shape((None,))
        return rows, batch_labels

    return indices.map(load, num_parallel_calls=2).prefetch(tf.data.AUTOTUNE)


def _index_batches(count: int, batch_size: int, shuffle: bool, seed: int):
    """Batches of the photos' positions, in a new seeded order every epoch when `shuffle`."""
    import tensorflow as tf

    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return indices.batch(batch_size)
