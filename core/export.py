"""Take the model anywhere: each format made from the kept model, then checked in the runtime that loads it.

Every export starts from the *inference* graph: the classifier without its augmentation layers
(random ops are not TFLite ops) and with every layer called in inference mode, so no format can
carry training-time behaviour. Each file is then loaded in its own runtime (SavedModel with
`tf.saved_model.load`, LiteRT with `ai_edge_litert`, ONNX with `onnxruntime`, TF.js with
`@tensorflow/tfjs` in Node) and run on the run's test photos: its top-1 agreement with the Keras
model, its accuracy, its size and its time per photo are stored with it. A format that disagrees
on more than 1% of the photos (int8: accuracy more than 1 point below the Keras model's) is
failed, and is never offered as a download.

Layout: `exports/<format>/` holds the files, `MODEL_CARD.md` and `verification.json`;
`exports/<format>.zip` is the download, made only for a passed check.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.backbones import BACKBONES
from core.errors import InputError
from core.files import atomic_path, data_home, write_atomic
from core.inference import load_model
from core.markup import md_literal

MAX_CHECK_PHOTOS = 400
MAX_AGREEMENT_LOSS = 0.01  # a format may disagree with Keras on at most 1% of the photos
MAX_INT8_ACCURACY_LOSS = 0.01  # int8 may lose at most 1 point of accuracy
REPRESENTATIVE_PHOTOS = 300
ONNX_OPSET = 17
TFJS_PYTHON = ("tensorflowjs==4.22.0", "tf-keras==2.21.0")  # installed on first use, without their dependencies
TFJS_NPM = "@tensorflow/tfjs@4.22.0"


class ExportError(InputError):
    """An export that cannot be made here; the message says why and what to do."""


@dataclass(frozen=True)
class ExportFormat:
    key: str
    title: str
    use: str  # who loads it, in plain words
    runtime: str  # what it was checked with
    main: str  # the file (or folder) to load, inside the format's folder
    any_size: bool  # takes photos of any size (else the run's image size)
    language: str


FORMATS = {
    f.key: f
    for f in (
        ExportFormat(
            "keras", "Keras (.keras)", "Python with Keras 3", "keras.models.load_model", "model.keras", True, "python"
        ),
        ExportFormat(
            "savedmodel",
            "TensorFlow SavedModel",
            "Python servers and TensorFlow Serving",
            "tf.saved_model.load",
            "saved_model",
            True,
            "python",
        ),
        ExportFormat(
            "tflite",
            "LiteRT (TFLite), float32",
            "Android and iOS apps, Raspberry Pi",
            "ai_edge_litert Interpreter",
            "model.tflite",
            False,
            "python",
        ),
        ExportFormat(
            "tflite-int8",
            "LiteRT (TFLite), int8",
            "Phones and small devices: about 4 times smaller",
            "ai_edge_litert Interpreter",
            "model_int8.tflite",
            False,
            "python",
        ),
        ExportFormat(
            "onnx", "ONNX", "ONNX Runtime: C#, C++, Java, Windows apps", "onnxruntime", "model.onnx", False, "python"
        ),
        ExportFormat(
            "tfjs",
            "TensorFlow.js",
            "Web pages: it runs in the visitor's browser",
            "@tensorflow/tfjs in Node.js",
            "web_model",
            False,
            "javascript",
        ),
    )
}


@dataclass
class Verification:
    """How an exported file did in its own runtime, on the run's test photos."""

    format: str
    title: str
    runtime: str
    passed: bool
    agreement: float  # share of photos where its top class is the Keras model's
    accuracy: float
    keras_accuracy: float
    photos: int
    size_bytes: int
    latency_ms: float  # one photo at a time, on this machine
    details: dict
    message: str


def format_of(key: str) -> ExportFormat:
    if key not in FORMATS:
        raise ExportError(f"Unknown format {key!r}. Choose one of: {', '.join(FORMATS)}")
    return FORMATS[key]


def export_folder(run, key: str) -> Path:
    return run.path / "exports" / key


def existing(run, key: str) -> Verification | None:
    """The verification of an export already made from this run's current model, if any."""
    path = export_folder(run, key) / "verification.json"
    try:
        if path.stat().st_mtime < run.model_path.stat().st_mtime:
            return None  # made from an earlier model (the run was resumed since)
        return Verification(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def progress_path(run, key: str) -> Path:
    """The line saying what an export under way is doing, for the page to show."""
    return run.path / "exports" / f"{key}.progress"


def zip_path(run, key: str) -> Path:
    return run.path / "exports" / f"{key}.zip"


def inference_model(model):
    """The classifier as inference sees it: the same layers, without augmentation, each called with training=False."""
    import keras

    inputs = keras.Input(shape=(None, None, 3), name="image")
    x = inputs
    for layer in model.layers[1:]:
        if layer.name != "augmentation":
            x = layer(x, training=False)
    return keras.Model(inputs, x, name=model.name)


def photos_missing(run) -> str | None:
    """Why exports of `run` cannot be checked here (its photos are not on this machine), or None."""
    try:
        rows = run.splits()
    except OSError:
        rows = []
    if not any(Path(path).is_file() for _, _, path in rows[:50]):
        return (
            "Each format is checked on this run's own photos, and they are not on this server (the run was "
            "opened from a file, or its photos were moved). Its Keras model is in “Keep this run as a file”; "
            "other formats can be made where its photos are."
        )
    return None


def check_photos(run) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The run's test photos (else validation, else training) at its image size, with their class indices."""
    from core.images import load_rgb

    class_names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
    rows = run.splits()
    for split in ("test", "val", "train"):
        chosen = [(label, path) for s, label, path in rows if s == split][:MAX_CHECK_PHOTOS]
        if chosen:
            break
    size = run.image_size()
    pixels = np.stack([load_rgb(path, size) for _, path in chosen]).astype(np.float32)
    return pixels, np.array([class_names.index(label) for label, _ in chosen]), class_names


class ExportSource:
    """The kept model as every format starts from it, loaded once however many formats are made:
    the inference model, the check photos and the Keras model's answers on them, and (made on
    first need) a SavedModel at the run's fixed size, which three converters start from."""

    def __init__(self, run):
        if not run.model_path.exists():
            raise ExportError(f"Run {run.id} has no model yet: it has to finish (or be stopped after an epoch) first.")
        quiet_tensorflow()
        self.run, self.size = run, run.image_size()
        self.model = inference_model(load_model(run.model_path))
        self.pixels, self.labels, self.class_names = check_photos(run)
        self.reference = self.model.predict(self.pixels, batch_size=32, verbose=0)
        self._fixed: Path | None = None

    def fixed_saved_model(self) -> Path:
        if self._fixed is None:
            self._fixed = self.run.path / "exports" / f".fixed-size-{os.getpid()}"
            shutil.rmtree(self._fixed, ignore_errors=True)
            self.model.export(
                str(self._fixed), format="tf_saved_model", input_signature=_fixed(self.size), verbose=False
            )
        return self._fixed

    def close(self) -> None:
        if self._fixed is not None:
            shutil.rmtree(self._fixed, ignore_errors=True)


def export_run(
    run, key: str, progress: Callable[[str], None] = print, source: ExportSource | None = None
) -> Verification:
    """Make format `key` of `run`'s kept model, check it in its runtime, and (if it passes) zip it with its card."""
    fmt = format_of(key)
    own = source is None
    source = source or ExportSource(run)
    try:
        folder = export_folder(run, key)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        zip_path(run, key).unlink(missing_ok=True)
        progress(f"Making the {fmt.title} file")
        details = WRITERS[key](source, folder / fmt.main, progress)
        progress(f"Checking it with {fmt.runtime} on {len(source.pixels)} photos")
        predict = RUNTIMES[key](folder / fmt.main, source.size)
        pixels = source.pixels
        probabilities = np.concatenate([predict(pixels[i : i + 32]) for i in range(0, len(pixels), 32)])
        latency = getattr(predict, "latency_ms", None) or _latency(predict, pixels)
        verification = _judge(fmt, source.reference, probabilities, source.labels, folder / fmt.main, latency, details)
        write_atomic(folder / "verification.json", json.dumps(asdict(verification), indent=1))
        write_atomic(folder / "MODEL_CARD.md", model_card(run, fmt, verification, source.class_names, source.size))
        if verification.passed:
            _zip(folder, zip_path(run, key))
        return verification
    finally:
        if own:
            source.close()


def export_many(run, keys: list[str], progress: Callable[[str], None] = print) -> list[Verification]:
    """Several formats from one loading of the model (the CLI's `--format all`); those already made are read back."""
    for key in keys:
        format_of(key)
    done = {key: existing(run, key) for key in keys}
    if all(done.values()):
        return list(done.values())
    source = ExportSource(run)
    try:
        return [done[key] or export_run(run, key, progress, source) for key in keys]
    finally:
        source.close()


def quiet_tensorflow() -> None:
    """Keep TensorFlow's and the converters' advice to their own developers off a person's screen."""
    import logging
    import warnings

    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow")
    warnings.filterwarnings("ignore", category=FutureWarning, module="keras")


def predict_files(run, key: str, paths: list[str], top: int = 3) -> list[dict]:
    """Top classes for each photo from export `key` of `run`, loaded in its own runtime (the CLI's `predict`).

    Photos that cannot be read get an `error` in words; the others are answered.
    """
    from core.images import ImageRejected
    from core.inference import read_photo

    fmt = format_of(key)
    if key == "keras":
        if not run.model_path.exists():
            raise ExportError(f"Run {run.id} has no model yet: it has to finish (or be stopped after an epoch) first.")
        main = run.model_path
    else:
        verification = existing(run, key)
        if verification is None:
            raise ExportError(
                f"Run {run.id} has no {fmt.title} export yet: make it first with "
                f"python -m core export {run.path} --format {key}"
            )
        if not verification.passed:
            raise ExportError(
                f"The {fmt.title} export of run {run.id} failed its check, so it is not used: {verification.message}"
            )
        main = export_folder(run, key) / fmt.main
    class_names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
    size = run.image_size()
    quiet_tensorflow()
    predict = RUNTIMES[key](main, size)
    answers = []
    for path in paths:
        try:
            pixels = read_photo(path, size).astype(np.float32)
        except ImageRejected as error:
            answers.append({"path": path, "error": str(error)})
            continue
        probabilities = predict(pixels[None])[0]
        order = np.argsort(probabilities)[::-1][:top]
        answers.append({"path": path, "top": [(class_names[i], float(probabilities[i])) for i in order]})
    return answers


def _judge(fmt, reference, probabilities, labels, main: Path, latency: float, details: dict) -> Verification:
    agreement = float((reference.argmax(1) == probabilities.argmax(1)).mean())
    accuracy = float((probabilities.argmax(1) == labels).mean())
    keras_accuracy = float((reference.argmax(1) == labels).mean())
    if fmt.key == "tflite-int8":
        passed = accuracy >= keras_accuracy - MAX_INT8_ACCURACY_LOSS - 1e-9
        why = f"accuracy {accuracy:.1%} against {keras_accuracy:.1%} for the float model"
    else:
        passed = agreement >= 1 - MAX_AGREEMENT_LOSS - 1e-9
        why = f"it agrees with the Keras model on {agreement:.1%} of the photos"
    message = f"Checked the way it will be loaded ({fmt.runtime}): {why}." + (
        "" if passed else " That is not close enough: not offered."
    )
    size = sum(p.stat().st_size for p in main.rglob("*") if p.is_file()) if main.is_dir() else main.stat().st_size
    return Verification(
        fmt.key,
        fmt.title,
        fmt.runtime,
        passed,
        agreement,
        accuracy,
        keras_accuracy,
        len(labels),
        size,
        latency,
        details,
        message,
    )


def _latency(predict, pixels: np.ndarray, repeats: int = 20) -> float:
    """Milliseconds per photo, one photo at a time, after a warm-up (the median)."""
    one = pixels[:1]
    for _ in range(3):
        predict(one)
    times = []
    for index in range(repeats):
        started = time.perf_counter()
        predict(pixels[index % len(pixels) : index % len(pixels) + 1])
        times.append(time.perf_counter() - started)
    return round(float(np.median(times)) * 1000, 2)


def _zip(folder: Path, target: Path) -> None:
    with atomic_path(target) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, Path(folder.name) / path.relative_to(folder))


# --- writers: the inference model to each format ------------------------------------------


def _write_keras(source: ExportSource, target: Path, progress) -> dict:
    source.model.save(target)
    return {}


def _write_savedmodel(source: ExportSource, target: Path, progress) -> dict:
    source.model.export(str(target), format="tf_saved_model", verbose=False)
    return {"signature": "serve", "input": "float32 [batch, height, width, 3], RGB 0-255, any size"}


def _fixed(size: int):
    import keras

    return [keras.InputSpec(shape=(None, size, size, 3), dtype="float32")]


def _write_tflite(source: ExportSource, target: Path, progress) -> dict:
    import tensorflow as tf

    builtins = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}
    source.model.export(
        str(target), format="litert", input_signature=_fixed(source.size), target_spec=builtins, verbose=False
    )
    return {"ops": _tflite_ops(target)}


def _write_tflite_int8(source: ExportSource, target: Path, progress) -> dict:
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
        predict = _tflite_runtime(trial, size)
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
    from core.images import load_rgb

    rows = run.splits()
    paths = [path for s, _, path in rows if s == split]
    chosen = paths[:: max(len(paths) // limit, 1)][:limit]
    if not chosen:
        return np.zeros((0, size, size, 3), np.float32)
    return np.stack([load_rgb(path, size) for path in chosen]).astype(np.float32)


def _tflite_ops(path: Path) -> list[list[str]]:
    """Each operator of a LiteRT model and the type of its first input (float32 ops in an int8 model fell back)."""
    interpreter = _interpreter(path)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = []
    for op in interpreter._get_ops_details():  # noqa: SLF001  (the interpreter's only list of operators)
        inputs = [i for i in op["inputs"] if i >= 0]
        kind = str(np.dtype(tensors[inputs[0]]["dtype"])) if inputs and inputs[0] in tensors else "?"
        ops.append([op["op_name"], kind])  # a list, as it reads back from verification.json
    return ops


def _write_onnx(source: ExportSource, target: Path, progress) -> dict:
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


def _write_tfjs(source: ExportSource, target: Path, progress) -> dict:
    tools = ensure_tfjs_tools(progress)
    saved = source.fixed_saved_model()
    progress("Converting it for TensorFlow.js")
    command = [sys.executable, str(Path(__file__).with_name("tfjs_convert.py")), str(saved), str(target)]
    result = subprocess.run(command, env=_tool_env(tools), capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise ExportError(f"The TensorFlow.js converter failed: {(result.stderr or result.stdout).strip()[-300:]}")
    return {"converter": TFJS_PYTHON[0], "loader": TFJS_NPM}


WRITERS = {
    "keras": _write_keras,
    "savedmodel": _write_savedmodel,
    "tflite": _write_tflite,
    "tflite-int8": _write_tflite_int8,
    "onnx": _write_onnx,
    "tfjs": _write_tfjs,
}


# --- runtimes: each file loaded as its users load it --------------------------------------


def _keras_runtime(path: Path, size: int):
    model = load_model(path)
    return lambda pixels: np.asarray(model.predict_on_batch(pixels))


def _savedmodel_runtime(path: Path, size: int):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    return lambda pixels: loaded.serve(tf.constant(pixels)).numpy()


def _interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # where LiteRT's own package is unavailable
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    return Interpreter(model_path=str(path))


def _tflite_runtime(path: Path, size: int):
    interpreter = _interpreter(path)
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


def _onnx_runtime(path: Path, size: int):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda pixels: session.run(None, {name: pixels.astype(np.float32)})[0]


def _tfjs_runtime(path: Path, size: int):
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


RUNTIMES = {
    "keras": _keras_runtime,
    "savedmodel": _savedmodel_runtime,
    "tflite": _tflite_runtime,
    "tflite-int8": _tflite_runtime,
    "onnx": _onnx_runtime,
    "tfjs": _tfjs_runtime,
}


# --- the model card ---------------------------------------------------------------------

EXAMPLES = {
    "keras": """import keras, numpy as np
from PIL import Image

model = keras.models.load_model("model.keras")
photo = np.asarray(Image.open("photo.jpg").convert("RGB"), dtype="float32")  # any size, 0-255
probabilities = model.predict(photo[None])[0]
CLASSES = {classes}
best = int(probabilities.argmax())
print(CLASSES[best], f"{{probabilities[best]:.0%}}")""",
    "savedmodel": """import numpy as np, tensorflow as tf
from PIL import Image

model = tf.saved_model.load("saved_model")
photo = np.asarray(Image.open("photo.jpg").convert("RGB"), dtype="float32")  # any size, 0-255
probabilities = model.serve(tf.constant(photo[None])).numpy()[0]
CLASSES = {classes}
best = int(probabilities.argmax())
print(CLASSES[best], f"{{probabilities[best]:.0%}}")""",
    "tflite": """import numpy as np
from ai_edge_litert.interpreter import Interpreter  # pip install ai-edge-litert
from PIL import Image

interpreter = Interpreter(model_path="{main}"); interpreter.allocate_tensors()
photo = np.asarray(Image.open("photo.jpg").convert("RGB").resize(({size}, {size})), dtype="float32")  # 0-255
interpreter.set_tensor(interpreter.get_input_details()[0]["index"], photo[None])
interpreter.invoke()
probabilities = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
print({classes}[int(probabilities.argmax())])""",
    "onnx": """import numpy as np, onnxruntime
from PIL import Image

session = onnxruntime.InferenceSession("model.onnx")
photo = np.asarray(Image.open("photo.jpg").convert("RGB").resize(({size}, {size})), dtype="float32")  # 0-255
probabilities = session.run(None, {{session.get_inputs()[0].name: photo[None]}})[0][0]
CLASSES = {classes}
best = int(probabilities.argmax())
print(CLASSES[best], f"{{probabilities[best]:.0%}}")""",
    "tfjs": """<script src="https://cdn.jsdelivr.net/npm/@tensorflow/tfjs@4.22.0"></script>
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
</script>""",
}
EXAMPLES["tflite-int8"] = EXAMPLES["tflite"]


def model_card(run, fmt: ExportFormat, verification: Verification, class_names: list[str], size: int) -> str:
    """What a person receiving the file needs: what goes in, what comes out, how good it is, how to load it."""
    dataset = run.dataset() or {}
    counts = dataset.get("counts") or {}
    photos = sum(sum(row.values()) for row in counts.values())
    status = run.raw_status()
    takes = "any size (it resizes inside)" if fmt.any_size else f"{size} x {size} pixels"
    network = BACKBONES[run.config().backbone].label
    example = EXAMPLES[fmt.key].format(classes=json.dumps(class_names), size=size, main=fmt.main)
    lines = [
        f"# {md_literal(run.title())}: {fmt.title}",
        "",
        f"- **File:** `{fmt.main}`, checked with {fmt.runtime}.",
        f"- **Classes, in output order:** {', '.join(f'{k}: {md_literal(name)}' for k, name in enumerate(class_names))}.",
        f"- **Input:** RGB photos as float32 numbers from 0 to 255, shape [batch, height, width, 3], {takes}.",
        "- **Preprocessing:** inside the model (resizing and the network's own scaling); give it raw pixels.",
        "- **Output:** one probability per class, summing to 1.",
        f"- **Trained on:** {photos} photos of {len(class_names)} classes "
        f"({', '.join(md_literal(name) for name in class_names)}), starting from "
        f"{network} with {md_literal(status.weights or 'pretrained weights')}, at {size} px.",
        f"- **This file's test accuracy:** {verification.accuracy:.1%} on {verification.photos} test photos "
        f"(the Keras model: {verification.keras_accuracy:.1%}; top class the same on {verification.agreement:.1%}).",
        f"- **Size:** {verification.size_bytes / 1e6:.1f} MB. **Time per photo** on the machine that made it: "
        f"{verification.latency_ms:.1f} ms.",
    ]
    if verification.details.get("opset"):
        lines.append(f"- **ONNX opset:** {verification.details['opset']}.")
    if fmt.key == "tflite-int8":
        fell = verification.details.get("float_ops") or []
        layers = verification.details.get("float_layers") or []
        lines.append(
            f"- **Quantization:** int8, calibrated on {verification.details.get('representative_photos')} training photos; "
            + (f"these operators stay float32: {', '.join(fell)}." if fell else "every operator is int8.")
            + (
                f" The {len(layers)} layers that int8 rounding hurt most stay float32 to keep accuracy: "
                f"{', '.join(layers)}."
                if layers
                else ""
            )
        )
    if fmt.key.startswith("tflite"):
        lines.append("- **Android and iOS:** load the file with LiteRT's Interpreter (ai.google.dev/edge/litert).")
    lines += [
        "",
        "## Example",
        "",
        f"```{fmt.language if fmt.language != 'javascript' else 'html'}",
        example,
        "```",
        "",
    ]
    return "\n".join(lines)


# --- TF.js tools, on first use ------------------------------------------------------------


def tools_home() -> Path:
    """Where the web export's tools are installed on first use (`STUDIO_TOOLS`, default the data folder's tools/)."""
    return Path(os.environ.get("STUDIO_TOOLS") or data_home() / "tools").absolute()


def tfjs_unavailable() -> str | None:
    """Why the web export cannot be made on this server, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js is not installed on this server, so a TensorFlow.js model could not be checked; ask its administrator."
    return None


def ensure_tfjs_tools(progress: Callable[[str], None]) -> Path:
    """The TF.js converter (Python, beside the main environment) and loader (Node.js), installed once.

    `tensorflowjs` pins packages that would break this environment (a full TensorFlow, JAX, an
    older `packaging`), so it is installed without its dependencies into its own folder and run
    in its own process (`core/tfjs_convert.py`), which never imports Keras 3.
    """
    reason = tfjs_unavailable()
    if reason:
        raise ExportError(reason)
    tools = tools_home()
    python, node = tools / "tfjs", tools / "node"
    if not (python / ".installed").exists():
        progress("Preparing the web export tools (first time only, about a minute)")
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(python),
            *TFJS_PYTHON,
        ]
        _install(command, "the TensorFlow.js converter")
        (python / ".installed").write_text(" ".join(TFJS_PYTHON))
    if not (node / ".installed").exists():
        progress("Preparing the web export tools (first time only, about a minute)")
        node.mkdir(parents=True, exist_ok=True)
        (node / "package.json").write_text(json.dumps({"name": "studio-tfjs-check", "private": True}))
        _install(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", TFJS_NPM], "TensorFlow.js for Node.js", cwd=node
        )
        (node / ".installed").write_text(TFJS_NPM)
    return tools


def _install(command: list[str], what: str, cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise ExportError(
            f"{what} could not be installed ({(result.stderr or result.stdout).strip()[-200:]}). The web export needs "
            "the package registries once; try again with internet."
        )


def _tool_env(tools: Path) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(tools / "tfjs"), env.get("PYTHONPATH", "")])
    return env
