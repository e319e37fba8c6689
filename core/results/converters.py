"""Each format's writer: the inference model to a file (Keras, SavedModel, LiteRT float32 and int8, ONNX,
TensorFlow.js)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from core.results.export_base import MAX_AGREEMENT_LOSS, MAX_CHECK_PHOTOS, ExportError, ExportSource, fixed_signature
from core.results.runtimes import litert_interpreter, tflite_runtime
from core.results.tfjs_tools import TFJS_NPM, TFJS_PYTHON, ensure_tfjs_tools, tool_env

REPRESENTATIVE_PHOTOS = 300
ONNX_OPSET = 17


def write_keras(source: ExportSource, target: Path, progress) -> dict:
    source.model.save(target)
    return {}


def write_savedmodel(source: ExportSource, target: Path, progress) -> dict:
    source.model.export(str(target), format="tf_saved_model", verbose=False)
    return {"signature": "serve", "input": "float32 [batch, height, width, 3], RGB 0-255, any size"}


def write_tflite(source: ExportSource, target: Path, progress) -> dict:
    import tensorflow as tf

    builtins = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    source.model.export(
        str(target), format="litert", input_signature=fixed_signature(source.size), target_spec=builtins, verbose=False
    )
    return {"ops": _tflite_ops(target)}


def write_tflite_int8(source: ExportSource, target: Path, progress) -> dict:
    """Post-training int8 quantization calibrated on training photos, full-integer where that holds up.

    MobileNets have a few depthwise layers whose activations int8 rounds badly (on hymenoptera,
    full-integer MobileNetV2 lost 1.3 points). When the full-integer model disagrees with the
    float one on more than 1% of the validation photos, TFLite's quantization debugger ranks
    the layers by their rounding error (RMSE over the quantization step) and the worst 3, 6 or
    10 stay float, the first that agrees enough (or the best) being kept. The test photos judge
    the result afterwards, as for every format; they play no part in this choice.
    """
    import tensorflow as tf

    run, size = source.run, source.size
    photos = _photos_of(run, "train", size, REPRESENTATIVE_PHOTOS)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(source.fixed_saved_model()))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([photo[None]] for photo in photos)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    held_out = _photos_of(run, "val", size, MAX_CHECK_PHOTOS)
    if not len(held_out):
        held_out = photos
    reference = source.model.predict(held_out, batch_size=32, verbose=0).argmax(1)
    content = converter.convert()
    agreement, kept_float = _agreement(content, target, size, held_out, reference), []
    if agreement < 1 - MAX_AGREEMENT_LOSS:
        progress("Finding the layers that int8 rounding hurts most")
        ranked = _most_hurt_layers(converter, photos[:64])
        for count in (3, 6, 10):
            options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=ranked[:count])
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=lambda: ([p[None]] for p in photos[:1]), debug_options=options
            )
            candidate = debugger.get_nondebug_quantized_model()
            score = _agreement(candidate, target, size, held_out, reference)
            if score > agreement:
                content, agreement, kept_float = candidate, score, ranked[:count]
            if agreement >= 1 - MAX_AGREEMENT_LOSS:
                break
    target.write_bytes(content)
    ops_seen = _tflite_ops(target)
    float_ops = sorted(
        {name for name, kind in ops_seen if kind == "float32" and name not in ("QUANTIZE", "DEQUANTIZE")}
    )
    return {
        "representative_photos": len(photos),
        "float_ops": float_ops,
        "float_layers": [_layer_name(name) for name in kept_float],
        "validation_agreement": round(agreement, 4),
        "ops": ops_seen,
    }


def _agreement(content: bytes, target: Path, size: int, pixels: np.ndarray, reference: np.ndarray) -> float:
    """The share of `pixels` on which a LiteRT model (bytes) gives the float model's top class."""
    trial = target.with_name("trial.tflite")
    trial.write_bytes(content)
    try:
        predict = tflite_runtime(trial, size)
        answers = np.concatenate([predict(pixels[i : i + 32]) for i in range(0, len(pixels), 32)]).argmax(1)
    finally:
        trial.unlink(missing_ok=True)
    return float((answers == reference).mean())


def _most_hurt_layers(converter, photos: np.ndarray) -> list[str]:
    """Tensor names of the quantized layers, worst rounding error (RMSE over the quantization step) first."""
    import csv
    import io

    import tensorflow as tf

    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([p[None]] for p in photos)
    )
    debugger.run()
    table = io.StringIO()
    debugger.layer_statistics_dump(table)
    table.seek(0)
    rows = [r for r in csv.DictReader(table) if float(r["scale"] or 0) > 0]
    rows.sort(key=lambda r: -(float(r["mean_squared_error"]) ** 0.5) / float(r["scale"]))
    return [r["tensor_name"] for r in rows]


def _layer_name(tensor_name: str) -> str:
    """`model/mobilenetv2_0.50_224_1/block_2_depthwise_relu_1/Relu6;...` -> `block_2_depthwise_relu`."""
    parts = tensor_name.split(";")[0].split("/")
    return parts[-2].removesuffix("_1") if len(parts) > 1 else "the output"


def _photos_of(run, split: str, size: int, limit: int) -> np.ndarray:
    """Up to `limit` photos of one split, spread evenly over it, as float32 RGB 0-255."""
    from core.data.images import load_rgb

    rows = run.splits()
    paths = [path for s, _, path in rows if s == split]
    chosen = paths[:: max(len(paths) // limit, 1)][:limit]
    if not chosen:
        return np.zeros((0, size, size, 3), np.float32)
    return np.stack([load_rgb(path, size) for path in chosen]).astype(np.float32)


def _tflite_ops(path: Path) -> list[list[str]]:
    """Each operator of a LiteRT model and the type of its first input (float32 ops in an int8 model fell back)."""
    interpreter = litert_interpreter(path)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = []
    for op in interpreter._get_ops_details():  # noqa: SLF001  (the interpreter's only list of operators)
        inputs = [i for i in op["inputs"] if i >= 0]
        kind = str(np.dtype(tensors[inputs[0]]["dtype"])) if inputs and inputs[0] in tensors else "?"
        ops.append([op["op_name"], kind])  # a list, as it reads back from verification.json
    return ops


def write_onnx(source: ExportSource, target: Path, progress) -> dict:
    """tf2onnx, from a SavedModel: converting the Keras function directly leaves constants that some
    layers hold outside variables (EfficientNet's normalization) as extra graph inputs."""
    import onnx

    saved = source.fixed_saved_model()
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved), "--output", str(target)]
    command += ["--opset", str(ONNX_OPSET), "--rename-inputs", "image", "--rename-outputs", "probabilities"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise ExportError(f"The ONNX converter (tf2onnx) failed: {result.stderr.strip()[-300:]}")
    opset = next(o.version for o in onnx.load(str(target)).opset_import if o.domain in ("", "ai.onnx"))
    return {"opset": opset, "converter": "tf2onnx", "input": "image", "output": "probabilities"}


def write_tfjs(source: ExportSource, target: Path, progress) -> dict:
    tools = ensure_tfjs_tools(progress)
    saved = source.fixed_saved_model()
    progress("Converting it for TensorFlow.js")
    command = [sys.executable, str(Path(__file__).with_name("tfjs_convert.py")), str(saved), str(target)]
    result = subprocess.run(command, env=tool_env(tools), capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise ExportError(f"The TensorFlow.js converter failed: {(result.stderr or result.stdout).strip()[-300:]}")
    return {"converter": TFJS_PYTHON[0], "loader": TFJS_NPM}
