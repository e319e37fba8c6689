"""The choices and bounds the run's settings are declared with (`core.network.config`), and the augmentation\nsettings, which are a part of every run's configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.base.settings import setting
from core.network.backbones import BACKBONES
from core.network.distribute import MAX_DEVICES

AUTO_SIZE = 0  # `image_size` 0: chosen from the photos when training starts (BackboneSpec.auto_image_size)


# `keep` auto keeps the most accurate epoch only when validation has this many photos: with fewer, one
# photo moves validation accuracy by more than half a point and the "most accurate" epoch is mostly luck.
BEST_NEEDS_VALIDATION = 200
FLIPS = {"none": "No flips", "horizontal": "Left-right", "vertical": "Upside down", "both": "Both"}


def _fraction(label: str, help: str, default: float) -> Any:
    return setting(
        default, label=label, help=help, low=0.0, high=0.9, step=0.05, widget="slider", recipe=True, page="data"
    )


@dataclass(frozen=True)
class AugmentationConfig:
    """Random changes to training photos only (off at inference), so the model learns the subject, not the shot.

    Zoom and shift are fractions of the image, contrast and brightness of the range.
    """

    flip: str = setting(
        "horizontal", label="Flip", page="data", help="Random mirror images.", choices=FLIPS, recipe=True
    )
    rotation: float = setting(
        18.0,
        label="Rotate (degrees, either way)",
        page="data",
        help="Each photo is turned by a random angle up to this many degrees, left or right.",
        low=0.0,
        high=180.0,
        step=1.0,
        widget="slider",
        recipe=True,
    )
    zoom: float = _fraction("Zoom", "Random zoom in or out, as a fraction of the photo.", 0.1)
    translation: float = _fraction("Shift", "Random shift sideways and up or down, as a fraction of the photo.", 0.0)
    contrast: float = _fraction("Contrast", "Random change of contrast.", 0.0)
    brightness: float = _fraction("Brightness", "Random change of brightness.", 0.0)

    @property
    def enabled(self) -> bool:
        return self.flip != "none" or any((self.rotation, self.zoom, self.translation, self.contrast, self.brightness))

    @classmethod
    def off(cls) -> AugmentationConfig:
        return cls(flip="none", rotation=0.0, zoom=0.0)


class BackboneChoices(Mapping):
    """The registry's backbones with their labels, read live (adding a backbone is adding a registry entry)."""

    def __getitem__(self, key: str) -> str:
        spec = BACKBONES[key]
        return f"{spec.label}: {spec.hint}"

    def __iter__(self):
        return iter(BACKBONES)

    def __len__(self) -> int:
        return len(BACKBONES)


class DeviceChoices(Mapping):
    """`all`, `cpu`, or a number of devices as text ("2"): any number up to MAX_DEVICES is allowed,
    the usual ones are listed."""

    NAMED = {
        "all": "Every GPU (the processor when there is none)",
        "cpu": "The processor only, even with GPUs",
    }
    LISTED = ("1", "2", "4", "8")

    def __getitem__(self, key: str) -> str:
        if key in self.NAMED:
            return self.NAMED[key]
        if isinstance(key, str) and key.isdigit() and 1 <= int(key) <= MAX_DEVICES:
            return "One GPU" if key == "1" else f"The first {key} GPUs"
        raise KeyError(key)

    def __iter__(self):
        return iter([*self.NAMED, *self.LISTED])

    def __len__(self) -> int:
        return len(self.NAMED) + len(self.LISTED)


PRECISIONS = {
    "auto": "Auto: mixed float16 on GPUs with tensor cores, else float32",
    "mixed": "Mixed float16 (weights kept in float32; the kept model is saved in float32)",
    "float32": "float32 everywhere",
}


def parse_image_size(text: str) -> int:
    return AUTO_SIZE if text.strip().lower() == "auto" else int(text)


def parse_units(text: str) -> tuple[int, ...]:
    return tuple(int(u) for u in text.replace(" ", "").split(",") if u)


OPTIMIZERS = {"adam": "Adam", "rmsprop": "RMSprop", "sgd": "SGD with momentum 0.9"}
POOLINGS = {"avg": "Average (recommended)", "max": "Maximum", "flatten": "Flatten (keeps positions; many more weights)"}
CLASS_WEIGHTS = {"auto": "Auto: only when classes are unbalanced", "on": "Always", "off": "Never"}
KEEP = {
    "auto": f"Auto: the most accurate with {BEST_NEEDS_VALIDATION}+ validation photos, else the final",
    "final": "The final model",
    "best": "The most accurate epoch on validation",
}


# Fine-tuning "while it pays" stops once this many epochs in a row have not improved the validation photos
# (beyond the new head alone, and beyond fine-tuning's best so far), given BEST_NEEDS_VALIDATION of them.
FINETUNE_PATIENCE = 3
# ...and is skipped where the new head alone already tells apart this share of its own training photos: the
# pretrained features then separate the classes, and fine-tuning, which changes them, does not pay. Measured
# (docs/speed.md), the head's accuracy on its training photos in its last epoch (dropout on): 0.77-0.78 on
# flowers5, where fine-tuning added 4-5 points; 0.94-0.95 on flowers2 and 0.995 on hymenoptera, where it added
# nothing. Without dropout, as judged here, flowers2's is 0.98 and flowers5's stays below 0.9 (it fine-tunes).
HEAD_FITS = 0.9
FINETUNE_UNTIL = {
    "pays": f"While it pays: skipped where the new head alone already fits {HEAD_FITS:.0%} of its training photos, "
    f"and stopped after {FINETUNE_PATIENCE} epochs in a row that do not improve the validation photos (given "
    f"{BEST_NEEDS_VALIDATION} or more)",
    "all": "Every epoch set",
}

EPOCHS: dict[str, Any] = {"low": 0, "high": 1000, "step": 1}
PATIENCE: dict[str, Any] = {"low": 0, "high": 1000, "step": 1, "recipe": True}
RATE: dict[str, Any] = {"low": 0.0, "high": 1.0, "above_low": True, "recipe": True}
