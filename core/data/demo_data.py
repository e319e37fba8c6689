"""The built-in demo dataset: photo-like pictures of four shapes, drawn from a seed.

It needs no download, so the tool works on a fresh offline machine, and it is realistic
enough to show what a classifier gets wrong: each class is a shape (circle, square,
triangle, star) in random colours, sizes, positions and rotations on textured backgrounds,
and some pictures are hard the way real photos are hard: the shape is small, low in
contrast, badly lit, blurred, partly hidden, or surrounded by clutter of other shapes. Every
star has five clear points. Same seed, same pixels, on every machine.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEMO_CLASSES = ("circle", "square", "triangle", "star")
DEMO_VERSION = 3  # 2: hard pictures (clutter, occlusion, lighting, look-alikes); 3: stars with five clear points
DEMO_IMAGES_PER_CLASS = 60
DEMO_SIZE = 128
# How often each difficulty appears (each picture draws each independently).
HARD = {"small": 0.25, "low_contrast": 0.25, "clutter": 0.35, "occluded": 0.25, "dark": 0.2, "blurred": 0.2}


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
    """One picture of `label` on a random textured background, hard in the ways `HARD` draws."""
    hard = {name: rng.random() < chance for name, chance in HARD.items()}
    picture = _background(rng, size)
    draw = ImageDraw.Draw(picture)
    if hard["clutter"]:  # smaller shapes of the other classes around the subject
        for _ in range(int(rng.integers(1, 4))):
            other = DEMO_CLASSES[int(rng.integers(len(DEMO_CLASSES)))]
            radius = size * rng.uniform(0.05, 0.11)
            centre = rng.uniform(radius, size - radius, size=2)
            _shape(draw, other, centre, radius, rng.uniform(0, 2 * math.pi), _colour(rng), rng)
    radius = size * (rng.uniform(0.1, 0.16) if hard["small"] else rng.uniform(0.18, 0.32))
    centre = rng.uniform(radius + 4, size - radius - 4, size=2)
    fill = _near(np.asarray(picture).reshape(-1, 3).mean(axis=0), rng) if hard["low_contrast"] else _colour(rng)
    _shape(draw, label, centre, radius, rng.uniform(0, 2 * math.pi), fill, rng)
    if hard["occluded"]:  # something in front of part of the shape
        side = radius * rng.uniform(0.8, 1.3)
        corner = centre + rng.uniform(-radius, radius * 0.2, size=2)
        draw.rectangle([*corner, *(corner + side)], fill=_colour(rng))
    if hard["dark"]:
        picture = Image.fromarray((np.asarray(picture, np.float32) * rng.uniform(0.25, 0.45)).astype(np.uint8))
    return picture.filter(ImageFilter.GaussianBlur(rng.uniform(1.2, 2.2) if hard["blurred"] else rng.uniform(0, 0.8)))


def _shape(draw: ImageDraw.ImageDraw, label: str, centre, radius: float, angle: float, fill, rng) -> None:
    cx, cy = (float(c) for c in centre)
    outline = _colour(rng)
    if label == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill, outline=outline, width=2)
        return
    corners = {"square": 4, "triangle": 3, "star": 10}[label]
    inner = rng.uniform(
        0.38, 0.5
    )  # a five-pointed star's notches (0.38 is the regular star's; fatter reads as a pentagon)
    points = []
    for k in range(corners):
        r = radius * (inner if label == "star" and k % 2 else 1.0)
        theta = angle + 2 * math.pi * k / corners
        points.append((cx + r * math.cos(theta), cy + r * math.sin(theta)))
    draw.polygon(points, fill=fill, outline=outline, width=2)


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    red, green, blue = (int(c) for c in rng.integers(0, 256, size=3))
    return red, green, blue


def _near(colour: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int]:
    """A colour close to `colour`: a shape that barely stands out."""
    red, green, blue = (int(c) for c in np.clip(colour + rng.normal(0, 22, size=3), 0, 255))
    return red, green, blue


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    base = rng.integers(0, 256, size=3).astype(np.float32)
    tilt = rng.normal(0, 40, size=(2, 3)).astype(np.float32)
    ramp = np.linspace(-1, 1, size, dtype=np.float32)
    pixels = base + ramp[None, :, None] * tilt[0] + ramp[:, None, None] * tilt[1]
    pixels += rng.normal(0, 12, size=(size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")
