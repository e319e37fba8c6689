"""Each format's file loaded as its users load it, as a function from photos to probabilities."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from core.network.inference import load_model
from core.results.export_base import ExportError
from core.results.tfjs_tools import tools_home


def keras_runtime(path: Path, size: int):
    model = load_model(path)
    return lambda pixels: np.asarray(model.predict_on_batch(pixels))


def savedmodel_runtime(path: Path, size: int):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return lambda pixels: loaded.serve(tf.constant(pixels)).numpy()


def litert_interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # where LiteRT's own package is unavailable
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    return Interpreter(model_path=str(path))


def tflite_runtime(path: Path, size: int):
    interpreter = litert_interpreter(path)
    source, sink = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
    batch = [0]

    def predict(pixels):
        if batch[0] != len(pixels):
            interpreter.resize_tensor_input(source, list(pixels.shape))
            interpreter.allocate_tensors()
            batch[0] = len(pixels)
        interpreter.set_tensor(source, pixels.astype(np.float32))
        interpreter.invoke()
        return np.array(interpreter.get_tensor(sink))

    return predict


def onnx_runtime(path: Path, size: int):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda pixels: session.run(None, {name: pixels.astype(np.float32)})[0]


def tfjs_runtime(path: Path, size: int):
    """@tensorflow/tfjs (pure JavaScript backend) in Node.js, one process per call of `predict`."""
    tools = tools_home() / "node"
    script = Path(__file__).with_name("tfjs_check.js")

    def predict(pixels):
        # The photos go to Node in a scratch file beside the export's folder, never inside what is zipped.
        with tempfile.NamedTemporaryFile(suffix=".bin", dir=path.parent.parent) as scratch:
            np.ascontiguousarray(pixels, np.float32).tofile(scratch.name)
            command = ["node", str(script), str(path), scratch.name, str(len(pixels)), str(size)]
            env = {**os.environ, "NODE_PATH": str(tools / "node_modules")}  # the loader installed on first use
            result = subprocess.run(command, cwd=tools, env=env, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise ExportError(f"TensorFlow.js could not load the model: {result.stderr.strip()[-300:]}")
        answer = json.loads(next(line for line in result.stdout.splitlines() if line.startswith("{")))
        predict.latency_ms = round(float(answer["latency_ms"]), 2)  # timed inside Node, without its start-up
        return np.array(answer["probabilities"], np.float32)

    return predict
