"""A saved model loaded for predictions, in Keras safe mode only (photos are read by `core.data.images`)."""

from __future__ import annotations

from pathlib import Path

from core.base.errors import InputError, first_line


class ModelRefused(InputError):
    """A model file that will not be loaded: it holds code (Keras safe mode refuses it), or is damaged."""


def load_model(path: str | Path):
    """Load a `.keras` model without running any code stored in it.

    Raises:
        ModelRefused: in one sentence, when Keras's safe mode refuses it or it cannot be read.
    """
    import keras

    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # noqa: BLE001 - Keras raises many types for a refused or damaged file
        refused = "safe_mode" in str(error) or "Lambda" in str(error)
        raise ModelRefused(
            f"The model {Path(path).name} was not loaded: "
            + (
                "it holds code (a Lambda layer), which is never run here. Train the model again in Fine-Tune Studio."
                if refused
                else f"it cannot be read ({first_line(error, 120)}). It may be damaged; train it again."
            )
        ) from None


def inference_model(model):
    """The classifier as inference sees it: the same layers, without augmentation, each called with training=False."""
    import keras

    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = inputs
    for layer in model.layers[1:]:
        if layer.name != "augmentation":
            x = layer(x, training=False)
    return keras.Model(inputs, x, name=model.name)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's and the converters' advice to their own developers off a person's screen."""
    import logging
    import warnings

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow")
    warnings.filterwarnings("ignore", category=FutureWarning, module="keras")
