"""What the model looks at: heatmaps, by the method that measured best (`bench/heatmaps.py`, `docs/heatmaps.md`).

The chosen method multiplies two class-activation maps of the same forward and backward pass: Grad-CAM at the
backbone's last layer (the keras.io example's method: which features speak for the class) and LayerCAM at the layer
whose grid is twice as fine (Jiang et al., 2021: where, to half a cell, they are). At 160 px the last layer is a 5x5
grid, and its peak alone fell on a small object for a fifth of right answers; the product's, for 97% of them.

The classifier holds its backbone as a nested model, so the example's one-liner `Model(model.inputs,
[conv_output, model.output])` would raise "Graph disconnected". Instead the photo goes through the layers before
the backbone, a copy of the backbone that also returns the finer layer records both on a gradient tape, and the
head after it is applied layer by layer; the class score is the final layer's logit (before softmax, whose
saturation would flatten the gradients of a confident answer).
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
UNSURE_BELOW = 0.5  # a top answer under this: no heatmap is painted (measured in docs/heatmaps.md)


@dataclass
class Explanation:
    heatmap: np.ndarray  # float32 [size, size] in [0, 1]
    probabilities: np.ndarray  # float32 [classes]
    class_index: int  # the class the heatmap is for
    flat: bool = False  # nothing in the photo pushed the model towards that class: a picture would show nothing

    @property
    def unsure(self) -> bool:
        """The model's top answer is too weak for its heatmap to say where it looked."""
        return float(self.probabilities.max()) < UNSURE_BELOW


def _parts(model):
    """The classifier's layers before its backbone, the backbone, and the head (augmentation left out)."""
    import keras

    layers = [layer for layer in model.layers[1:] if layer.name != "augmentation"]
    at = next((i for i, layer in enumerate(layers) if isinstance(layer, keras.Model)), None)
    if at is None:
        raise ValueError("this model has no nested backbone to explain")
    return layers[:at], layers[at], layers[at + 1 :]


def finer_layer(base, factor: int = 2) -> str | None:
    """The backbone's last layer whose grid is `factor` times as fine as its final one (at 2: stride 16 in most
    families), or None where there is none. Its maps place things to a `factor`th of a final cell."""
    final = base.output.shape[1]
    best = None
    for layer in base.layers:
        shape = getattr(getattr(layer, "output", None), "shape", None)
        if shape is not None and len(shape) == 4 and shape[1] == factor * final and shape[2] == factor * final:
            best = layer.name
    return best


_PROBES: dict[tuple[int, tuple[str, ...]], tuple[Any, Any]] = {}


def _probe(base, names: tuple[str, ...]):
    """The backbone with the named layers' outputs as well as its own (built once per backbone)."""
    import keras

    if not names:
        return base
    key = (id(base), names)
    if key not in _PROBES or _PROBES[key][0] is not base:
        if len(_PROBES) >= 4:  # a task explains one model; a benchmark, one after another
            _PROBES.clear()
        outputs = [base.get_layer(name).output for name in names]
        _PROBES[key] = (base, keras.Model(base.inputs, [*outputs, base.output]))
    return _PROBES[key][1]


@dataclass
class _Pass:
    maps: list[np.ndarray]  # each [n, h, w, c]: the named layers' activations, then the backbone's output
    gradients: list[np.ndarray]  # the class score's gradients with respect to them
    probabilities: np.ndarray  # [n, classes]
    wanted: list[int]


def _gradients(model, pixels: np.ndarray, classes, names: tuple[str, ...], batch: int = 8) -> _Pass:
    """Forward and backward passes, `batch` photos at a time: the watched layers' activations and the gradients
    of each photo's class score (the final layer's logit, before softmax, whose saturation would flatten a
    confident answer's)."""
    wanted = classes or [None] * len(pixels)
    parts = [
        _one_pass(model, pixels[k : k + batch], wanted[k : k + batch], names) for k in range(0, len(pixels), batch)
    ]
    return _Pass(
        [np.concatenate([part.maps[i] for part in parts]) for i in range(len(parts[0].maps))],
        [np.concatenate([part.gradients[i] for part in parts]) for i in range(len(parts[0].gradients))],
        np.concatenate([part.probabilities for part in parts]),
        [c for part in parts for c in part.wanted],
    )


def _one_pass(model, pixels: np.ndarray, classes, names: tuple[str, ...]) -> _Pass:
    import tensorflow as tf

    before, base, head = _parts(model)
    final = head[-1]
    x = tf.convert_to_tensor(pixels, tf.float32)
    for layer in before:
        x = layer(x, training=False)
    probe = _probe(base, names)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = probe(x, training=False)
        maps = list(outputs) if isinstance(outputs, list | tuple) else [outputs]
        y = maps[-1]
        for layer in head[:-1]:
            y = layer(y, training=False)
        logits = tf.matmul(y, final.kernel) + final.bias
        probabilities = tf.nn.softmax(logits)
        wanted = [
            int(np.argmax(p)) if c is None else int(c) for p, c in zip(probabilities.numpy(), classes, strict=True)
        ]
        score = tf.gather(logits, wanted, axis=1, batch_dims=1)
    gradients = tape.gradient(score, maps)
    return _Pass([m.numpy() for m in maps], [g.numpy() for g in gradients], probabilities.numpy(), wanted)


def _gradcam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., 2017): the maps weighted by their mean gradient."""
    return np.maximum(np.einsum("nhwc,nc->nhw", a, g.mean(axis=(1, 2))), 0)


def _gradcam_plus(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Grad-CAM++ (Chattopadhyay et al., 2018), in its usual closed form for an exponentiated score."""
    g2, g3 = g**2, g**3
    denominator = 2 * g2 + a.sum(axis=(1, 2), keepdims=True) * g3
    alpha = g2 / np.where(denominator != 0, denominator, 1)
    weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    return np.maximum(np.einsum("nhwc,nc->nhw", a, weights), 0)


def _layercam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """LayerCAM (Jiang et al., 2021): each place weighted by its own positive gradients."""
    return np.maximum((np.maximum(g, 0) * a).sum(axis=-1), 0)


def _hirescam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """HiResCAM (Draelos and Carin, 2020): activations times gradients, place by place."""
    return np.maximum((g * a).sum(axis=-1), 0)


CAMS = {"gradcam": _gradcam, "gradcam_plus": _gradcam_plus, "layercam": _layercam, "hirescam": _hirescam}
GRIDS = {"final": 1, "fine": 2, "finer": 4}  # how many times finer than the backbone's last grid


def _resized(heat: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(heat.astype(np.float32), "F").resize((size, size), Image.Resampling.BILINEAR))


def _scaled(heat: np.ndarray) -> tuple[np.ndarray, bool]:
    peak = float(heat.max())
    return (heat / peak if peak > 0 else heat).astype(np.float32), not peak > 0


def occlusion_maps(model, pixels: np.ndarray, wanted: list[int], cells: int = 8, batch: int = 64):
    """Occlusion sensitivity (Zeiler and Fergus, 2014): a patch of the photo's mean colour a quarter of it wide,
    slid in `cells` steps each way; the map is how far the class's probability falls with each place hidden."""
    size = pixels.shape[1]
    patch = max(2, size // 4)
    starts = np.linspace(0, size - patch, cells).round().astype(int)
    places = [(top, left) for top in starts for left in starts]
    heats = []
    for photo, c in zip(pixels, wanted, strict=True):
        hidden = np.repeat(photo[None], len(places) + 1, axis=0)
        fill = photo.reshape(-1, 3).mean(axis=0)
        for k, (top, left) in enumerate(places, start=1):
            hidden[k, top : top + patch, left : left + patch] = fill
        scores = model.predict(hidden, verbose=0, batch_size=batch)[:, c]
        heat = np.zeros((size, size), np.float32)
        count = np.zeros((size, size), np.float32)
        for fallen, (top, left) in zip(scores[0] - scores[1:], places, strict=True):
            heat[top : top + patch, left : left + patch] += fallen
            count[top : top + patch, left : left + patch] += 1
        heats.append(np.maximum(heat / np.maximum(count, 1), 0))
    return heats


@dataclass(frozen=True)
class Method:
    key: str
    parts: tuple[str, ...]  # the maps multiplied: "CAM@GRID" (a key of CAMS at a key of GRIDS) or "occlusion"
    words: str  # what made the picture, in the words the page and the report use


METHODS = {
    m.key: m
    for m in (
        Method("gradcam", ("gradcam@final",), "Grad-CAM at the network's last layer"),
        Method("gradcam_fine", ("gradcam@fine",), "Grad-CAM at a layer with a twice finer grid"),
        Method("gradcam_plus", ("gradcam_plus@final",), "Grad-CAM++ at the network's last layer"),
        Method("layercam", ("layercam@final",), "LayerCAM at the network's last layer"),
        Method("layercam_fine", ("layercam@fine",), "LayerCAM at a layer with a twice finer grid"),
        Method("hirescam_fine", ("hirescam@fine",), "HiResCAM at a layer with a twice finer grid"),
        Method("occlusion", ("occlusion",), "hiding each part of the photo in turn"),
        Method(
            "gradcam_x_layercam_fine",
            ("gradcam@final", "layercam@fine"),
            "Grad-CAM at the network's last layer, sharpened by LayerCAM at a more detailed layer",
        ),
        Method("layercam_fine_x_finer", ("layercam@fine", "layercam@finer"), "LayerCAM at two more detailed layers"),
    )
}
CHOSEN = "gradcam_x_layercam_fine"  # the best for MobileNetV2 at 160 and 224 px, and most others (docs/heatmaps.md)
# Where another method measured best: (the family's keras.applications module, the size measured) -> method.
BEST_ELSEWHERE: dict[tuple[str, int | None], str] = {
    ("mobilenet", 160): "layercam_fine_x_finer",
    # Measured at 160 px with random weights (none are in ../shared), where gradients say little: hiding parts
    # says more. Applied at every size (None): 224 px was not measured.
    ("efficientnet", None): "occlusion",
}
MEASURED_SIZES = (160, 224)


def method_for(backbone: str, image_size: int) -> str:
    """The method that measured best for the backbone's family at the measured size nearest `image_size` (or at
    any size, where only one was measured)."""
    from core.network.backbones import BACKBONES

    spec = BACKBONES.get(backbone)
    nearest = min(MEASURED_SIZES, key=lambda size: abs(size - image_size))
    if spec is None:
        return CHOSEN
    return BEST_ELSEWHERE.get((spec.module, nearest)) or BEST_ELSEWHERE.get((spec.module, None)) or CHOSEN


def run_method(run) -> str:
    """The method for a run's heatmaps: the one that measured best for its backbone and image size."""
    return method_for(run.config().backbone, run.image_size())


def heatmap_note(run) -> str:
    """One sentence under a run's heatmaps: which method made them and how to read them."""
    made_by = METHODS[run_method(run)].words
    return f"Made by {made_by}: warm colours are the parts of the photo that pushed the model towards that class."


def heatmaps(
    model, pixels: np.ndarray, classes: list[int | None] | None, method: str = CHOSEN, batch: int = 8
) -> list[Explanation]:
    """Heatmaps by `method` (a key of METHODS) for RGB 0-255 photos at the model's size, `batch` at a time (the
    backward pass keeps every layer's activations); `classes[i]` None means its predicted class. Each map is in
    [0, 1] at the photo's size; several parts are multiplied."""
    _, base, _ = _parts(model)
    size = pixels.shape[1]
    parts = METHODS[method].parts
    grids = {part: part.split("@")[1] for part in parts if "@" in part}
    layers = {grid: finer_layer(base, GRIDS[grid]) for grid in set(grids.values()) if grid != "final"}
    names = tuple(sorted({name for name in layers.values() if name}))
    if grids:  # the gradient pass also gives the answers that occlusion explains
        found = _gradients(model, pixels, classes, names, batch)
    else:  # occlusion alone needs only the answers
        probabilities = model.predict(pixels, verbose=0, batch_size=batch)
        wanted = [
            int(np.argmax(p)) if c is None else int(c)
            for p, c in zip(probabilities, classes or [None] * len(pixels), strict=True)
        ]
        found = _Pass([], [], probabilities, wanted)
    product = np.ones((len(pixels), size, size), np.float32)
    for part in parts:
        if part == "occlusion":
            maps = occlusion_maps(model, pixels, found.wanted)
        else:
            name = layers.get(grids[part])
            at = names.index(name) if name else -1  # a backbone too small for the finer grid: its last layer
            maps = list(CAMS[part.split("@")[0]](found.maps[at], found.gradients[at]))
        for k, heat in enumerate(maps):
            product[k] *= _scaled(np.clip(_resized(_scaled(heat)[0], size), 0, 1))[0]
    explanations = []
    for heat, p, c in zip(product, found.probabilities, found.wanted, strict=True):
        scaled, flat = _scaled(heat)
        explanations.append(Explanation(np.clip(scaled, 0, 1), np.asarray(p, np.float32), c, flat=flat))
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
    method = run_method(run)
    answers: list[dict[str, Any]] = []
    used: set[str] = set()
    for path in paths:
        try:
            photo = read_photo(path, size)
        except ImageRejected as error:
            answers.append({"path": path, "error": str(error)})
            continue
        explanation = heatmaps(model, photo[None].astype(np.float32), None, method)[0]
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


def why_not_shown(explanation: Explanation) -> str:
    """Why a heatmap is not worth painting, in words, or "" when it is."""
    if explanation.flat:
        return "nothing in it pointed to that class"
    if explanation.unsure:
        top = float(explanation.probabilities.max())
        return f"no heatmap: the model is unsure of this photo (its top answer is {top:.0%})"
    return ""


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
    method = run_method(run)
    key = hashlib.sha1(f"{photo}|{stamp}|{class_name or ''}|{model}|{method}".encode()).hexdigest()[:20]
    return run.path / "heatmaps" / f"{key}.png"


def explain_photos(run, paths: list[str], class_names: list[str | None] | None = None) -> list[dict]:
    """Overlays for photos of a run (the dashboard's `explain` task), kept in `heatmaps/` so each is made once.

    Each answer has `heatmap` (the PNG's path) and `top` (the model's top classes), or `not_shown` (why no
    picture is worth showing, in words), or `error`.
    """
    from core.base.files import write_atomic
    from core.data.images import ImageRejected, read_photo
    from core.network.inference import inference_model, load_model, quiet_tensorflow

    wanted = class_names or [None] * len(paths)
    names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
    size, model = run.image_size(), None
    method = run_method(run)
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
        explanation = heatmaps(model, photo[None].astype(np.float32), [index], method)[0]
        order = np.argsort(explanation.probabilities)[::-1][:3]
        top = [(names[i], float(explanation.probabilities[i])) for i in order]
        why = why_not_shown(explanation)
        if why:  # said in words: an empty picture would look like a fault, a confident one would mislead
            answers.append({"path": path, "not_shown": why, "for_class": names[explanation.class_index], "top": top})
            continue
        if not target.exists():
            buffer = io.BytesIO()
            Image.fromarray(overlay(photo, explanation.heatmap)).save(buffer, format="PNG")
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, buffer.getvalue())
        answers.append({"path": path, "heatmap": str(target), "for_class": names[explanation.class_index], "top": top})
    return answers
