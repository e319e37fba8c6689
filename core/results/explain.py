"""What the model looks at: Grad-CAM heatmaps (the keras.io Grad-CAM example's method).

The classifier holds its backbone as a nested model, so the example's one-liner
`Model(model.inputs, [conv_output, model.output])` would raise "Graph disconnected". Instead
the photo goes through the layers before the backbone, the backbone's last convolutional
output is recorded on a gradient tape, and the head after it is applied layer by layer; the
class score is the final layer's logit (before softmax, whose saturation would flatten the
gradients of a confident answer). The heatmap is the ReLU of the feature maps weighted by
their mean gradient, scaled to [0, 1] and resized to the model's input size.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# A perceptually ordered colour scale (dark blue, purple, orange, yellow) for the overlay.
_STOPS = np.array([[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]], np.float32)


@dataclass
class Explanation:
    heatmap: np.ndarray  # float32 [size, size] in [0, 1]
    probabilities: np.ndarray  # float32 [classes]
    class_index: int  # the class the heatmap is for
    flat: bool = False  # nothing in the photo pushed the model towards that class: a picture would show nothing


def _parts(model):
    """The classifier's layers before its backbone, the backbone, and the head (augmentation left out)."""
    import keras

    layers = [layer for layer in model.layers[1:] if layer.name != "augmentation"]
    at = next((i for i, layer in enumerate(layers) if isinstance(layer, keras.Model)), None)
    if at is None:
        raise ValueError("this model has no nested backbone to explain")
    return layers[:at], layers[at], layers[at + 1 :]


def gradcam(model, pixels: np.ndarray, classes: list[int | None] | None = None) -> list[Explanation]:
    """Heatmaps for a batch of RGB 0-255 photos at the model's size; `classes[i]` None means its predicted class."""
    import tensorflow as tf

    before, base, head = _parts(model)
    final = head[-1]
    x = tf.convert_to_tensor(pixels, tf.float32)
    for layer in before:
        x = layer(x, training=False)
    with tf.GradientTape() as tape:
        features = base(x, training=False)
        tape.watch(features)
        y = features
        for layer in head[:-1]:
            y = layer(y, training=False)
        logits = tf.matmul(y, final.kernel) + final.bias
        probabilities = tf.nn.softmax(logits)
        wanted = [
            int(np.argmax(p)) if c is None else int(c)
            for p, c in zip(probabilities.numpy(), classes or [None] * len(pixels), strict=True)
        ]
        score = tf.gather(logits, wanted, axis=1, batch_dims=1)
    gradients = tape.gradient(score, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2))
    maps = tf.nn.relu(tf.einsum("nhwc,nc->nhw", features, weights)).numpy()
    size = pixels.shape[1]
    explanations = []
    for heat, p, c in zip(maps, probabilities.numpy(), wanted, strict=True):
        peak = float(heat.max())
        heat = heat / peak if peak > 0 else heat
        resized = np.asarray(
            Image.fromarray(heat.astype(np.float32), "F").resize((size, size), Image.Resampling.BILINEAR)
        )
        explanations.append(
            Explanation(np.clip(resized, 0, 1).astype(np.float32), p.astype(np.float32), c, flat=not peak > 0)
        )
    return explanations


def colour(heatmap: np.ndarray) -> np.ndarray:
    """A [0, 1] heatmap as RGB uint8 on the overlay's colour scale."""
    position = np.clip(heatmap, 0, 1) * (len(_STOPS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_STOPS) - 2)
    share = (position - low)[..., None]
    return (_STOPS[low] * (1 - share) + _STOPS[low + 1] * share).astype(np.uint8)


def overlay(photo: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    """The photo (RGB uint8), in grey so the colours are the heatmap's, under the heatmap's colour scale:
    dark blue where the model did not look, through orange, to yellow where it looked most."""
    size = photo.shape[1::-1]
    grey = np.asarray(Image.fromarray(photo).convert("L").convert("RGB"), np.float32)
    heat = np.asarray(
        Image.fromarray(heatmap.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR), np.float32
    )
    heat = heat.clip(0, 1)
    tint = colour(heat).astype(np.float32)
    alpha = (0.35 + 0.45 * heat)[..., None]
    return (grey * (1 - alpha) + tint * alpha).astype(np.uint8)


def explain_files(run, paths: list[str], out, top: int = 3) -> list[dict]:
    """The CLI's `explain`: for each photo, NAME.png (the photo with its heatmap) and NAME.npy (the heatmap at
    the model's input size, float32 in [0, 1]) in `out`, and its top classes. Unreadable photos get an `error`."""
    from core.base.files import safe_name, write_atomic
    from core.data.images import ImageRejected, read_photo
    from core.network.inference import inference_model, load_model, quiet_tensorflow

    quiet_tensorflow()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = inference_model(load_model(run.model_path))
    class_names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
    size = run.image_size()
    answers: list[dict[str, Any]] = []
    used: set[str] = set()
    for path in paths:
        try:
            photo = read_photo(path, size)
        except ImageRejected as error:
            answers.append({"path": path, "error": str(error)})
            continue
        explanation = gradcam(model, photo[None].astype(np.float32))[0]
        name = safe_name(Path(path).stem, limit=80) or "photo"
        while name in used:
            name += "_"
        used.add(name)
        with (out / f"{name}.npy").open("wb") as handle:
            np.save(handle, explanation.heatmap)
        picture = Image.fromarray(overlay(photo, explanation.heatmap))
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        write_atomic(out / f"{name}.png", buffer.getvalue())
        order = np.argsort(explanation.probabilities)[::-1][:top]
        answers.append(
            {
                "path": path,
                "top": [(class_names[i], float(explanation.probabilities[i])) for i in order],
                "heatmap": str(out / f"{name}.png"),
            }
        )
    return answers


def heatmap_path(run, photo: str, class_name: str | None) -> Path:
    """Where the overlay of `photo` for `class_name` (None: the class the model chose) is kept in the run."""
    from core.data.uploads import tried_photos_home

    try:
        # A tried photo is named by its content and written again at each view: its time says nothing.
        stamp = 0 if tried_photos_home() in Path(photo).parents else Path(photo).stat().st_mtime_ns
    except OSError:
        stamp = 0
    try:
        model = run.model_path.stat().st_mtime_ns  # the first model's heatmaps are not the final one's
    except OSError:
        model = 0
    key = hashlib.sha1(f"{photo}|{stamp}|{class_name or ''}|{model}".encode()).hexdigest()[:20]
    return run.path / "heatmaps" / f"{key}.png"


def explain_photos(run, paths: list[str], class_names: list[str | None] | None = None) -> list[dict]:
    """Overlays for photos of a run (the dashboard's `explain` task), kept in `heatmaps/` so each is made once.

    Each answer has `heatmap` (the PNG's path) and `top` (the model's top classes), or `flat` (nothing in the
    photo pointed to that class, so there is no picture to show), or `error`.
    """
    from core.base.files import write_atomic
    from core.data.images import ImageRejected, read_photo
    from core.network.inference import inference_model, load_model, quiet_tensorflow

    wanted = class_names or [None] * len(paths)
    names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
    size, model = run.image_size(), None
    answers: list[dict[str, Any]] = []
    for path, class_name in zip(paths, wanted, strict=True):
        target = heatmap_path(run, path, class_name)
        try:
            photo = read_photo(path, size)
        except ImageRejected as error:
            answers.append({"path": path, "error": str(error)})
            continue
        if model is None:
            quiet_tensorflow()
            model = inference_model(load_model(run.model_path))
        index = names.index(class_name) if class_name in names else None
        explanation = gradcam(model, photo[None].astype(np.float32), [index])[0]
        order = np.argsort(explanation.probabilities)[::-1][:3]
        top = [(names[i], float(explanation.probabilities[i])) for i in order]
        if explanation.flat:  # said in words; an empty picture would look like a fault
            answers.append({"path": path, "flat": True, "for_class": names[explanation.class_index], "top": top})
            continue
        if not target.exists():
            buffer = io.BytesIO()
            Image.fromarray(overlay(photo, explanation.heatmap)).save(buffer, format="PNG")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, buffer.getvalue())
        answers.append({"path": path, "heatmap": str(target), "for_class": names[explanation.class_index], "top": top})
    return answers
