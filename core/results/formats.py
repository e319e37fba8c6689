"""The export formats, one record each: what it is for, how it is written, how it is loaded and checked, and
the example its model card gives. Adding a format is adding one record here (with its writer in
`core.results.converters` and its loader in `core.results.runtimes`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.results import converters, runtimes
from core.results.export_base import ExportError

KERAS_EXAMPLE = """import keras, numpy as np
from PIL import Image

model = keras.models.load_model("model.keras")
photo = np.asarray(Image.open("photo.jpg").convert("RGB"), dtype="float32")  # any size, 0-255
probabilities = model.predict(photo[None])[0]
CLASSES = {classes}
best = int(probabilities.argmax())
print(CLASSES[best], f"{{probabilities[best]:.0%}}")"""

SAVEDMODEL_EXAMPLE = """import numpy as np, tensorflow as tf
from PIL import Image

model = tf.saved_model.load("saved_model")
photo = np.asarray(Image.open("photo.jpg").convert("RGB"), dtype="float32")  # any size, 0-255
probabilities = model.serve(tf.constant(photo[None])).numpy()[0]
CLASSES = {classes}
best = int(probabilities.argmax())
print(CLASSES[best], f"{{probabilities[best]:.0%}}")"""

TFLITE_EXAMPLE = """import numpy as np
from ai_edge_litert.interpreter import Interpreter  # pip install ai-edge-litert
from PIL import Image

interpreter = Interpreter(model_path="{main}"); interpreter.allocate_tensors()
photo = np.asarray(Image.open("photo.jpg").convert("RGB").resize(({size}, {size})), dtype="float32")  # 0-255
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], photo[None])
interpreter.invoke()
probabilities = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
print({classes}[int(probabilities.argmax())])"""

ONNX_EXAMPLE = """import numpy as np, onnxruntime
from PIL import Image

session = onnxruntime.InferenceSession("model.onnx")
photo = np.asarray(Image.open("photo.jpg").convert("RGB").resize(({size}, {size})), dtype="float32")  # 0-255
probabilities = session.run(None, {{session.get_inputs()[0].name: photo[None]}})[0][0]
CLASSES = {classes}
best = int(probabilities.argmax())
print(CLASSES[best], f"{{probabilities[best]:.0%}}")"""

TFJS_EXAMPLE = """<script src="https://cdn.jsdelivr.net/npm/@tensorflow/tfjs@4.22.0"></script>
<img id="photo" src="photo.jpg">
<script>
  const CLASSES = {classes};
  tf.loadGraphModel("web_model/model.json").then(model => {{
    const photo = tf.browser.fromPixels(document.getElementById("photo")).toFloat();  // RGB 0-255
    const input = tf.image.resizeBilinear(photo, [{size}, {size}]).expandDims(0);
    const probabilities = model.predict(input).dataSync();
    const best = probabilities.indexOf(Math.max(...probabilities));
    console.log(CLASSES[best], probabilities[best]);
  }});
</script>"""


@dataclass(frozen=True)
class ExportFormat:
    key: str
    title: str
    use: str  # who loads it, in plain words
    runtime: str  # what it was checked with
    main: str  # the file (or folder) to load, inside the format's folder
    any_size: bool  # takes photos of any size (else the run's image size)
    language: str  # of the example
    write: Callable[..., dict[str, Any]]  # (source, target, progress) -> details; `core.results.converters`
    load: Callable[[Path, int], Callable]  # (file, image size) -> predict(pixels); `core.results.runtimes`
    example: str  # the model card's example: .format(classes=, size=, main=)


FORMATS = {
    f.key: f
    for f in (
        ExportFormat(
            key="keras",
            title="Keras (.keras)",
            use="Python with Keras 3",
            runtime="keras.models.load_model",
            main="model.keras",
            any_size=True,
            language="python",
            write=converters.write_keras,
            load=runtimes.keras_runtime,
            example=KERAS_EXAMPLE,
        ),
        ExportFormat(
            key="savedmodel",
            title="TensorFlow SavedModel",
            use="Python servers and TensorFlow Serving",
            runtime="tf.saved_model.load",
            main="saved_model",
            any_size=True,
            language="python",
            write=converters.write_savedmodel,
            load=runtimes.savedmodel_runtime,
            example=SAVEDMODEL_EXAMPLE,
        ),
        ExportFormat(
            key="tflite",
            title="LiteRT (TFLite), float32",
            use="Android and iOS apps, Raspberry Pi",
            runtime="ai_edge_litert Interpreter",
            main="model.tflite",
            any_size=False,
            language="python",
            write=converters.write_tflite,
            load=runtimes.tflite_runtime,
            example=TFLITE_EXAMPLE,
        ),
        ExportFormat(
            key="tflite-int8",
            title="LiteRT (TFLite), int8",
            use="Phones and small devices: about 4 times smaller",
            runtime="ai_edge_litert Interpreter",
            main="model_int8.tflite",
            any_size=False,
            language="python",
            write=converters.write_tflite_int8,
            load=runtimes.tflite_runtime,
            example=TFLITE_EXAMPLE,
        ),
        ExportFormat(
            key="onnx",
            title="ONNX",
            use="ONNX Runtime: C#, C++, Java, Windows apps",
            runtime="onnxruntime",
            main="model.onnx",
            any_size=False,
            language="python",
            write=converters.write_onnx,
            load=runtimes.onnx_runtime,
            example=ONNX_EXAMPLE,
        ),
        ExportFormat(
            key="tfjs",
            title="TensorFlow.js",
            use="Web pages: it runs in the visitor's browser",
            runtime="@tensorflow/tfjs in Node.js",
            main="web_model",
            any_size=False,
            language="javascript",
            write=converters.write_tfjs,
            load=runtimes.tfjs_runtime,
            example=TFJS_EXAMPLE,
        ),
    )
}


def format_of(key: str) -> ExportFormat:
    if key not in FORMATS:
        raise ExportError(f"Unknown format {key!r}. Choose one of: {', '.join(FORMATS)}")
    return FORMATS[key]
