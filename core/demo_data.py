"""The built-in demo dataset: photos-like pictures of four shapes, drawn from a seed.

It needs no download, so the tool works on a fresh offline machine, and it is
learnable: each class is a shape (circle, square, triangle, star) in random colours,
sizes, positions and rotations on textured backgrounds, so a network must learn the
shape, not a colour or a position. Same seed, same pixels, on every machine.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEMO_CLASSES = ("circle", "square", "triangle", "star")
DEMO_VERSION = 1
DEMO_IMAGES_PER_CLASS = 60
DEMO_SIZE = 128


def ensure_demo_dataset(target: Path, per_class: int = DEMO_IMAGES_PER_CLASS, seed: int = 0) -> Path:
    """Write the demo set under `target` unless an identical one is already there."""
    target = Path(target)
    stamp = target / ".demo.json"
    wanted = {"version": DEMO_VERSION, "per_class": per_class, "seed": seed, "size": DEMO_SIZE}
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return target
        except (OSError, ValueError):
            pass
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    for index, label in enumerate(DEMO_CLASSES):
        folder = staging / label
        folder.mkdir(parents=True)
        rng = np.random.default_rng([seed, index])
        for number in range(per_class):
            draw_shape(label, rng, DEMO_SIZE).save(folder / f"{label}_{number:03d}.png")
    (staging / ".demo.json").write_text(json.dumps(wanted))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def draw_shape(label: str, rng: np.random.Generator, size: int) -> Image.Image:
    """One picture of `label` on a random textured background."""
    background = _background(rng, size)
    draw = ImageDraw.Draw(background)
    radius = size * rng.uniform(0.18, 0.32)
    cx = rng.uniform(radius + 4, size - radius - 4)
    cy = rng.uniform(radius + 4, size - radius - 4)
    angle = rng.uniform(0, 2 * math.pi)
    colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
    outline = tuple(int(c) for c in rng.integers(0, 256, size=3))
    if label == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour, outline=outline, width=2)
    else:
        corners = {"square": 4, "triangle": 3, "star": 10}[label]
        points = []
        for k in range(corners):
            r = radius * (0.45 if label == "star" and k % 2 else 1.0)
            theta = angle + 2 * math.pi * k / corners
            points.append((cx + r * math.cos(theta), cy + r * math.sin(theta)))
        draw.polygon(points, fill=colour, outline=outline, width=2)
    return background.filter(ImageFilter.GaussianBlur(rng.uniform(0.0, 0.8)))


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    base = rng.integers(0, 256, size=3).astype(np.float32)
    tilt = rng.normal(0, 40, size=(2, 3)).astype(np.float32)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    pixels = base + ramp[None, :, None] * tilt[0] + ramp[:, None, None] * tilt[1]
    pixels += rng.normal(0, 12, size=(size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
