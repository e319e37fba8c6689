"""Telling "none of your classes" apart from a class, with what the model can honestly measure.

A classifier's probabilities always add up to 1 over its classes, so a photo of an ant given
to a model of shapes still comes back "triangle 92%". What the model can measure is how far
a photo's features (what its head sees, the output of the `pool` layer) are from those of the
photos it learned each class from. After evaluation, the kept model's features of the training
photos give one centre per class; the validation photos, which are of these classes but were
never trained on, show how far a photo of a known class can honestly be. A new photo further
from every centre than that is said not to look like any of the classes.
"""

from __future__ import annotations

import numpy as np

FEATURE_LAYER = "pool"
MAX_CALIBRATION_PHOTOS = 2000  # training photos used for the centres: enough, and a few seconds at most
QUANTILE = 0.99  # of the validation photos' distances
MARGIN = 1.15  # beyond that distance by this factor: a photo of a known class is rarely further out


def feature_model(model):
    """`model` with a second output: the features its head sees."""
    import keras

    return keras.Model(model.inputs, [model.get_layer(FEATURE_LAYER).output, model.outputs[0]])


def distances(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Each photo's cosine distance to the nearest class centre (0: the same direction; 1: unrelated)."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return 1.0 - (unit @ centres.T).max(axis=1)


def class_centres(features: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """The unit-length mean direction of each class's unit-length features."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    centres = np.stack(
        [unit[labels == k].mean(axis=0) if (labels == k).any() else unit.mean(axis=0) for k in range(num_classes)]
    )
    return centres / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)


def calibrate(train_features, train_labels, val_features, num_classes: int) -> dict:
    """The class centres and the distance beyond which a photo is unlike every class.

    Without validation photos, the training photos' own distances set the limit (they sit closer
    to their centres, so the limit errs towards saying "unfamiliar" less often).
    """
    centres = class_centres(np.asarray(train_features, np.float32), np.asarray(train_labels), num_classes)
    reference = val_features if len(val_features) else train_features
    spread = distances(np.asarray(reference, np.float32), centres)
    threshold = float(np.quantile(spread, QUANTILE)) * MARGIN
    return {
        "layer": FEATURE_LAYER,
        "centres": centres.round(6).tolist(),
        "threshold": threshold,
        "reference": "validation" if len(val_features) else "training",
        "reference_photos": int(len(reference)),
    }


def unfamiliar(features: np.ndarray, calibration: dict) -> tuple[np.ndarray, np.ndarray]:
    """Each photo's distance to the nearest centre, and whether it is beyond the calibrated limit."""
    spread = distances(np.asarray(features, np.float32), np.asarray(calibration["centres"], np.float32))
    return spread, spread > calibration["threshold"]


def features_of(model, images: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The features and class probabilities of `images` (uint8 photos at any size) under `model`.

    The photos go in batches from their uint8 array (as evaluation feeds them), never as one float copy.
    """
    from core.data.pipeline import make_dataset

    if not len(images):
        return np.zeros((0, 1), np.float32), np.zeros((0, 1), np.float32)
    batches = make_dataset(np.asarray(images), None, batch_size, shuffle=False)
    features, probabilities = feature_model(model).predict(batches, verbose=0)
    return np.asarray(features, np.float32).reshape(len(images), -1), np.asarray(probabilities, np.float32)


def _sample(count: int, seed: int) -> np.ndarray:
    """The training rows calibration uses: a seeded sample of at most MAX_CALIBRATION_PHOTOS."""
    if count <= MAX_CALIBRATION_PHOTOS:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, MAX_CALIBRATION_PHOTOS, replace=False))


def calibrate_model(model, train, val, num_classes: int, seed: int = 0) -> dict:
    """`calibrate` on a seeded sample of at most MAX_CALIBRATION_PHOTOS training photos and every validation photo."""
    rows = _sample(len(train.images), seed)
    train_features, _ = features_of(model, train.images[rows])
    val_features, _ = features_of(model, val.images)
    return calibrate(train_features, train.labels[rows], val_features, num_classes)


def calibrate_stored(train_features, train_labels, val_features, num_classes: int, seed: int = 0) -> dict:
    """`calibrate_model` from features already computed (fast mode's stored `pool` output of the original photos):
    the same photos, without running the network again. Valid while the network below `pool` is unchanged."""
    rows = _sample(len(train_features), seed)
    train = np.asarray(train_features[rows], np.float32)
    val = np.asarray(val_features, np.float32) if val_features is not None else np.zeros((0, train.shape[1]))
    return calibrate(train, np.asarray(train_labels)[rows], val, num_classes)
