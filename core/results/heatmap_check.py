"""How true a heatmap is, measured: photos where the object that decides the class is known, the pointing game
(Zhang et al., ECCV 2016) and the deletion score (Petsiuk et al., BMVC 2018).

The photos: textured clutter of grey and dull-coloured shapes, and one small object whose colour is the class, at
a random place, its box recorded. A fifth class, photos with no coloured object, keeps the model from naming a
colour by the absence of the others (with four classes alone, it learned "green" that way: hiding the green
object hardly changed its answer, so no faithful heatmap could point at it). `bench/heatmaps.py` compares the
heatmap methods on them; a test holds the chosen method to its floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# The classes: an object's colour. The clutter's colours are far from all of them.
OBJECT_COLOURS = {
    "red": (225, 35, 35),
    "blue": (35, 75, 230),
    "green": (30, 190, 60),
    "yellow": (235, 215, 30),
}
NOTHING = len(OBJECT_COLOURS)  # the label of a photo of clutter alone
_DULL = ((120, 90, 60), (100, 70, 110), (90, 110, 110), (140, 120, 100))
POINTING_MARGIN = 0.05  # of the photo's side: the tolerance around the box (15 px on ImageNet's ~300 px photos)


@dataclass
class Scene:
    pixels: np.ndarray  # uint8 [size, size, 3]
    label: int  # index into OBJECT_COLOURS, or NOTHING
    box: tuple[int, int, int, int] | None  # left, top, right, bottom of the object, in pixels (None: no object)


def object_scene(rng: np.random.Generator, size: int, label: int) -> Scene:
    """One cluttered photo whose class is the colour of one small object (a disc, a square or a triangle about a
    seventh of the photo wide) at a random place; for NOTHING, the clutter alone."""
    grey = rng.integers(70, 170, (size // 8, size // 8, 1))
    base = np.clip(grey + rng.integers(-12, 13, (size // 8, size // 8, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(base).resize((size, size), Image.Resampling.BICUBIC)
    noise = rng.integers(-25, 25, (size, size, 3))
    image = Image.fromarray(np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):  # clutter: grey and dull shapes, the same for every class
        x, y = (int(v) for v in rng.integers(0, size, 2))
        w, h = (int(v) for v in rng.integers(size // 16, size // 5, 2))
        fill = (int(rng.integers(40, 220)),) * 3 if rng.random() < 0.5 else _DULL[int(rng.integers(len(_DULL)))]
        if rng.random() < 0.5:
            draw.rectangle([x, y, x + w, y + h], fill=fill)
        else:
            draw.ellipse([x, y, x + w, y + h], fill=fill)
    if label == NOTHING:
        return Scene(np.asarray(image, np.uint8), label, None)
    r = int(size * rng.uniform(0.06, 0.09))
    x, y = (int(v) for v in rng.integers(r + 2, size - r - 2, 2))
    colour = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in list(OBJECT_COLOURS.values())[label])
    shape = int(rng.integers(3))
    if shape == 0:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)
    elif shape == 1:
        draw.rectangle([x - r, y - r, x + r, y + r], fill=colour)
    else:
        draw.polygon([(x, y - r), (x + r, y + r), (x - r, y + r)], fill=colour)
    return Scene(np.asarray(image, np.uint8), label, (x - r, y - r, x + r, y + r))


def object_scenes(seed: int, size: int, per_class: int) -> list[Scene]:
    """`per_class` scenes of each class (NOTHING included), drawn from `seed`."""
    rng = np.random.default_rng(seed)
    return [object_scene(rng, size, label) for label in range(NOTHING + 1) for _ in range(per_class)]


def scene_classifier(family: str, size: int, weights: str | None, seed: int, per_class: int):
    """A classifier of the studio's shape for the scenes (the backbone `family` with `weights`, frozen; a new head
    fitted to its pooled features by logistic regression, as fast mode fits one to stored features), and test
    scenes it has not seen: `(model, test)`."""
    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from core.network.backbones import BACKBONES
    from core.network.config import AugmentationConfig
    from core.network.model import build_classifier

    spec = BACKBONES[family]
    model = build_classifier(spec.build(size, weights=weights), spec, NOTHING + 1, size, AugmentationConfig())
    train = object_scenes(1000 + seed, size, per_class)
    pooled = keras.Model(model.inputs, model.get_layer("pool").output)
    features = pooled.predict(np.stack([s.pixels for s in train]).astype(np.float32), verbose=0, batch_size=32)
    scaler = StandardScaler().fit(features)
    head = LogisticRegression(max_iter=3000).fit(scaler.transform(features), [s.label for s in train])
    kernel = (head.coef_ / scaler.scale_).T  # the scaling folded into the final layer
    bias = head.intercept_ - (head.coef_ * scaler.mean_ / scaler.scale_).sum(axis=1)
    model.get_layer("predictions").kernel.assign(kernel.astype(np.float32))
    model.get_layer("predictions").bias.assign(bias.astype(np.float32))
    return model, object_scenes(2000 + seed, size, max(10, per_class // 2))


def points_at(heatmap: np.ndarray, box: tuple[int, int, int, int], margin: float = POINTING_MARGIN) -> bool:
    """The pointing game: the heatmap's hottest point falls on the box, within `margin` of the photo's side."""
    size = heatmap.shape[0]
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    slack = margin * size
    left, top, right, bottom = box
    return bool(left - slack <= x <= right + slack and top - slack <= y <= bottom + slack)


def random_heatmap(rng: np.random.Generator, size: int, cells: int = 7) -> np.ndarray:
    """Random blobs at the scale of a heatmap's cells: what deleting "random parts" of a photo hides."""
    coarse = rng.random((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((size, size), Image.Resampling.BILINEAR))


def hidden(pixels: np.ndarray, heatmap: np.ndarray, fraction: float) -> np.ndarray:
    """The photo with its hottest `fraction` of pixels set to the photo's mean colour."""
    cut = np.quantile(heatmap, 1 - fraction)
    out = pixels.astype(np.float32).copy()
    out[heatmap >= cut] = pixels.reshape(-1, 3).mean(axis=0)
    return out


def deletion_drops(model, scenes: list[Scene], heatmaps: list[np.ndarray], classes: list[int], fractions, seed: int):
    """For each fraction, the mean fall of each photo's class probability when its hottest parts are hidden, and
    the same when random parts are: `(method, random)`, each a list over `fractions`."""
    rng = np.random.default_rng(seed)
    pixels = np.stack([s.pixels for s in scenes]).astype(np.float32)
    before = model.predict(pixels, verbose=0)[np.arange(len(scenes)), classes]
    ours, chance = [], []
    size = pixels.shape[1]
    for fraction in fractions:
        cut = np.stack([hidden(s.pixels, h, fraction) for s, h in zip(scenes, heatmaps, strict=True)])
        blind = np.stack([hidden(s.pixels, random_heatmap(rng, size), fraction) for s in scenes])
        rows = np.arange(len(scenes))
        ours.append(float(np.mean(before - model.predict(cut, verbose=0)[rows, classes])))
        chance.append(float(np.mean(before - model.predict(blind, verbose=0)[rows, classes])))
    return ours, chance
