"""Shared fixtures: an isolated workspace per test and generators for tiny image datasets."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.waiting import wait_until  # noqa: F401  (shared by the tests)

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    return Path(os.environ.get("STUDIO_SHARED", REPO.parent / "shared"))


SHARED = shared_dir()
SHARED_REASON = f"real data not found at {SHARED} (set STUDIO_SHARED to the shared/ folder)"
needs_shared = pytest.mark.skipif(not (SHARED / "datasets").is_dir(), reason=SHARED_REASON)
SHARED_V2_05 = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path_factory, monkeypatch):
    """Every test gets its own data, cache, runs and Keras home, so nothing leaks between tests."""
    root = tmp_path_factory.mktemp("workspace")
    for name, sub in (
        ("STUDIO_DATA", "data"),
        ("STUDIO_RUNS", "runs"),
        ("STUDIO_CACHE", "cache"),
        ("KERAS_HOME", "keras"),
    ):
        monkeypatch.setenv(name, str(root / sub))
    monkeypatch.setenv("STUDIO_WEIGHTS_DIRS", "")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    return root


def write_image(path: Path, colour, size: int = 32, fmt: str | None = None, mode: str = "RGB") -> Path:
    """A small image with a coloured square on noise, so classes differ but are not trivial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    pixels = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
    quarter = size // 4
    pixels[quarter : 3 * quarter, quarter : 3 * quarter] = colour
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format=fmt)
    return path


CLASS_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 230)}


@pytest.fixture
def make_dataset(tmp_path):
    """make_dataset({"red": 6, "green": 6}, split=None) -> folder of class folders of 32 px PNGs."""

    def make(counts: dict[str, int], root: Path | None = None, size: int = 32) -> Path:
        root = root or tmp_path / "photos"
        for label, count in counts.items():
            colour = CLASS_COLOURS.get(label, (200, 200, 0))
            for k in range(count):
                write_image(root / label / f"{label}_{k:02d}.png", colour, size=size)
        return root

    return make


def tiny_config(data: str, **changes):
    """The smallest real training: random weights, 32 px, one epoch per phase.

    MobileNet (v1) at width 0.25 is a real `keras.applications` network whose training step
    Keras builds in about half the time of MobileNetV2's (no residual blocks).
    """
    from core.config import AugmentationConfig, RunConfig

    values = dict(
        data=data,
        backbone="mobilenet_0.25",
        weights="none",
        image_size=32,
        batch_size=8,
        head_epochs=1,
        finetune_epochs=1,
        augmentation=AugmentationConfig.off(),
        early_stopping_patience=0,
        reduce_lr_patience=0,
    )
    values.update(changes)
    return RunConfig(**values)
