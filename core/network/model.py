"""Building the classifier and compiling it for a phase (which layers learn: `core.network.freezing`).

The model takes raw RGB pixels (0-255) of any size, so an exported model needs no
preprocessing code: resize, augmentation (active only in training), the family's
preprocessing, the base called with `training=False`, pooling, dropout, a dense head.
"""

from __future__ import annotations

import keras
import numpy as np

from core.network.backbones import BackboneSpec
from core.network.config import AugmentationConfig

IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


def preprocessing_layers(mode: str) -> list[keras.layers.Layer]:
    """Built-in layers equal to the family's `preprocess_input` (so a saved model needs no custom code).

    `caffe` is RGB->BGR and ImageNet mean subtraction: a fixed 1x1 convolution does both.
    """
    if mode == "tf":
        return [keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")]
    if mode == "torch":
        return [
            keras.layers.Rescaling(1.0 / 255.0, name="preprocess_scale"),
            keras.layers.Normalization(
                mean=[0.485, 0.456, 0.406],
                variance=[s * s for s in IMAGENET_STD_RGB],
                name="preprocess",
            ),
        ]
    if mode == "caffe":
        kernel = np.zeros((1, 1, 3, 3), dtype="float32")
        for out_channel, in_channel in enumerate((2, 1, 0)):
            kernel[0, 0, in_channel, out_channel] = 1.0
        bias = -np.array(IMAGENET_MEAN_RGB[::-1], dtype="float32")
        conv = keras.layers.Conv2D(3, 1, name="preprocess", trainable=False)
        conv.build((None, None, None, 3))
        conv.set_weights([kernel, bias])
        return [conv]
    if mode == "none":
        return []
    raise ValueError(f"Unknown preprocessing mode. Received: mode={mode!r}")


def augmentation_layers(config: AugmentationConfig, seed: int) -> list[keras.layers.Layer]:
    """Keras's random layers for `config`; they pass images through unchanged at inference."""
    layers = []
    flip = {"both": "horizontal_and_vertical", "horizontal": "horizontal", "vertical": "vertical"}.get(config.flip)
    if flip:
        layers.append(keras.layers.RandomFlip(flip, seed=seed, name="flip"))
    if config.rotation:
        # Keras takes the angle as a fraction of a full turn.
        turn = config.rotation / 360.0
        layers.append(keras.layers.RandomRotation(turn, fill_mode="reflect", seed=seed, name="rotation"))
    if config.zoom:
        layers.append(keras.layers.RandomZoom(config.zoom, fill_mode="reflect", seed=seed, name="zoom"))
    if config.translation:
        layers.append(
            keras.layers.RandomTranslation(
                config.translation, config.translation, fill_mode="reflect", seed=seed, name="translation"
            )
        )
    if config.contrast:
        layers.append(keras.layers.RandomContrast(config.contrast, seed=seed, name="contrast"))
    if config.brightness:
        layers.append(
            keras.layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=seed, name="brightness")
        )
    return layers


def build_augmenter(config: AugmentationConfig, seed: int) -> keras.Sequential:
    """The augmentation alone, for showing what it does to images."""
    return keras.Sequential(augmentation_layers(config, seed), name="augmentation")


def build_classifier(
    base: keras.Model,
    spec: BackboneSpec,
    num_classes: int,
    image_size: int,
    augmentation: AugmentationConfig,
    pooling: str = "avg",
    head_units: tuple[int, ...] = (),
    dropout: float = 0.2,
    seed: int = 0,
    pretrained: bool = True,
) -> keras.Model:
    """Raw pixels in, class probabilities out, with a pretrained `base` inside called in inference mode.

    A base with random weights (`pretrained=False`) has no statistics worth keeping, so
    its BatchNormalization layers follow training mode and train, as in any network
    trained from scratch.
    """
    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = keras.layers.Resizing(image_size, image_size, name="resize")(inputs)
    aug = augmentation_layers(augmentation, seed)
    if aug:
        x = keras.Sequential(aug, name="augmentation")(x)
    for layer in preprocessing_layers(spec.preprocessing):
        x = layer(x)
    # training=False keeps BatchNormalization in inference mode even when the base is
    # unfrozen: updating its statistics on a small dataset ruins the pretrained features.
    x = base(x, training=False) if pretrained else base(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="pool")(x)
    else:
        x = keras.layers.Flatten(name="pool")(x)
    for index, units in enumerate(head_units):
        if dropout:
            x = keras.layers.Dropout(dropout, seed=seed, name=f"head_dropout_{index}")(x)
        x = keras.layers.Dense(units, activation="relu", name=f"head_dense_{index}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, seed=seed, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"studio_{spec.key.replace('.', '_')}")


def make_optimizer(name: str, learning_rate: float, average_over: int = 0) -> keras.optimizers.Optimizer:
    """`average_over`: keep an exponential moving average of the weights spanning about that many
    steps (swapped in by SwapEMAWeights); 0 for none. Keras's average has no warm-up, so a span
    much longer than training would leave it close to the first, untrained weights."""
    options = {}
    if average_over:
        options = {"use_ema": True, "ema_momentum": min(1.0 - 1.0 / max(average_over, 2), 0.999)}
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, **options)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, **options)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, **options)
    raise ValueError(f"Unknown optimizer. Received: name={name!r}")


def compile_for_phase(model: keras.Model, optimizer: str, learning_rate: float, average_over: int = 0) -> None:
    """Recompile after every change of `trainable`: Keras fixes the trainable set at compile time."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate, average_over),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
