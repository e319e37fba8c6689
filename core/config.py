"""The run configuration: one frozen, validated object from the UI or CLI to the worker.

Everything a run needs is here, so a run directory's `config.json` is enough to
repeat it. Nothing in this module imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

OPTIMIZERS = ("adam", "rmsprop", "sgd")
POOLINGS = ("avg", "max", "flatten")
CLASS_WEIGHT_MODES = ("auto", "on", "off")
KEEP_MODES = ("auto", "final", "best")
# `keep` auto keeps the most accurate epoch only when validation has this many photos: with fewer, one
# photo moves validation accuracy by more than half a point and the "most accurate" epoch is mostly luck.
BEST_NEEDS_VALIDATION = 200
AUTO_SIZE = 0  # `image_size` 0: chosen from the photos when training starts (BackboneSpec.auto_image_size)
UNFREEZE_PATTERN = re.compile(r"^(auto|none|all|top:\d+|from:\d+|block:[\w.\-]+|layers:[\d,\s]+)$")


class ConfigError(ValueError):
    """A config value a person has to change; the message names the field and the value."""


@dataclass(frozen=True)
class AugmentationConfig:
    """Random augmentation applied to training images only (off at inference).

    Factors follow Keras's layers: rotation is a fraction of a full turn, zoom and
    translation a fraction of the image, contrast and brightness a fraction of the range.
    """

    horizontal_flip: bool = True
    vertical_flip: bool = False
    rotation: float = 0.05
    zoom: float = 0.1
    translation: float = 0.0
    contrast: float = 0.0
    brightness: float = 0.0

    @property
    def enabled(self) -> bool:
        return any(
            (
                self.horizontal_flip,
                self.vertical_flip,
                self.rotation,
                self.zoom,
                self.translation,
                self.contrast,
                self.brightness,
            )
        )

    @classmethod
    def off(cls) -> AugmentationConfig:
        return cls(horizontal_flip=False, vertical_flip=False, rotation=0.0, zoom=0.0)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run.

    `data` is a folder, a `.zip`, `demo` (the built-in dataset) or `sample:NAME`.
    `unfreeze` says which base layers train in phase 2: `auto` (the backbone's
    recommended cut), `none`, `all`, `top:N`, `from:N` (all but the first N), `block:NAME` or `layers:I,J,...`
    (indices into the base's layers).
    """

    data: str = "demo"
    val_data: str | None = None
    test_data: str | None = None
    backbone: str = "mobilenet_v2_0.5"
    weights: str = "imagenet"
    image_size: int = AUTO_SIZE
    batch_size: int = 32
    # The defaults were chosen by measurement on the shared datasets (docs/recipes.md).
    head_epochs: int = 30  # cheap in fast mode: the head trains on cached features
    finetune_epochs: int = 15
    head_learning_rate: float = 1e-2
    finetune_learning_rate: float = 1e-4
    optimizer: str = "adam"
    unfreeze: str = "auto"
    pooling: str = "avg"
    head_units: tuple[int, ...] = ()
    dropout: float = 0.5
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    # Off: with the cosine schedule, the epochs after a plateau are the low-rate ones that settle
    # the weights (see `keep` for which epoch is kept).
    early_stopping_patience: int = 0
    reduce_lr_patience: int = 2
    # Each phase's learning rate falls along a half cosine to near 0 by its last epoch (instead of
    # dropping on plateaus: reduce_lr_patience is then unused).
    cosine_decay: bool = True
    # Validate, keep and save the moving average of the weights (Keras's optimizer EMA).
    average_weights: bool = True
    # What a finished run keeps: `final`, the weights as training leaves them (the schedule ends at a
    # low rate, averaged), or `best`, its most accurate epoch on validation; `auto` keeps the best only
    # with at least BEST_NEEDS_VALIDATION validation photos. Measured (docs/recipes.md): on hymenoptera
    # (36 validation photos) the final model scored 0.919 over six seeds against 0.911, within seed
    # noise; on flowers5 (650) the best epoch was slightly better (0.783 against 0.780). A stopped run
    # always keeps its most accurate epoch.
    keep: str = "auto"
    class_weights: str = "auto"
    feature_cache: bool = True
    feature_views: int = 8  # the fine-tuned blocks see 8 versions of each photo, not 2: less overfitting
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 42
    name: str = ""

    def validate(self) -> RunConfig:
        """Return self if every value is usable, else raise ConfigError naming the first bad one."""
        checks = [
            (bool(self.data), "`data` is empty: choose a dataset folder, a .zip or `demo`"),
            (
                self.image_size == AUTO_SIZE or 16 <= self.image_size <= 1024,
                f"`image_size` must be 16 to 1024, or 0 (chosen from the photos). Received: {self.image_size}",
            ),
            (1 <= self.batch_size <= 4096, f"`batch_size` must be 1 to 4096. Received: {self.batch_size}"),
            (0 <= self.head_epochs <= 1000, f"`head_epochs` must be 0 to 1000. Received: {self.head_epochs}"),
            (
                0 <= self.finetune_epochs <= 1000,
                f"`finetune_epochs` must be 0 to 1000. Received: {self.finetune_epochs}",
            ),
            (
                self.head_epochs + self.finetune_epochs > 0,
                "`head_epochs` and `finetune_epochs` are both 0: nothing would train",
            ),
            (
                0 < self.head_learning_rate <= 1.0,
                f"`head_learning_rate` must be above 0 and at most 1. Received: {self.head_learning_rate}",
            ),
            (
                0 < self.finetune_learning_rate <= 1.0,
                f"`finetune_learning_rate` must be above 0 and at most 1. Received: {self.finetune_learning_rate}",
            ),
            (self.optimizer in OPTIMIZERS, f"`optimizer` must be one of {OPTIMIZERS}. Received: {self.optimizer!r}"),
            (self.pooling in POOLINGS, f"`pooling` must be one of {POOLINGS}. Received: {self.pooling!r}"),
            (
                all(1 <= u <= 65536 for u in self.head_units),
                f"`head_units` must be whole numbers from 1 to 65536. Received: {self.head_units}",
            ),
            (0.0 <= self.dropout < 1.0, f"`dropout` must be at least 0 and below 1. Received: {self.dropout}"),
            (
                UNFREEZE_PATTERN.match(self.unfreeze) is not None,
                f"`unfreeze` must be auto, none, all, top:N, from:N, block:NAME or layers:I,J. Received: {self.unfreeze!r}",
            ),
            (
                self.class_weights in CLASS_WEIGHT_MODES,
                f"`class_weights` must be one of {CLASS_WEIGHT_MODES}. Received: {self.class_weights!r}",
            ),
            (
                0.0 < self.val_fraction < 0.5,
                f"`val_fraction` must be above 0 and below 0.5. Received: {self.val_fraction}",
            ),
            (
                0.0 <= self.test_fraction < 0.5 and self.val_fraction + self.test_fraction < 0.8,
                f"`test_fraction` must be 0 to 0.5, leaving most images for training. Received: {self.test_fraction}",
            ),
            (0 <= self.early_stopping_patience <= 1000, "`early_stopping_patience` must be 0 (off) to 1000"),
            (0 <= self.reduce_lr_patience <= 1000, "`reduce_lr_patience` must be 0 (off) to 1000"),
            (0 <= self.seed < 2**31, f"`seed` must be 0 to 2147483647. Received: {self.seed}"),
            (self.keep in KEEP_MODES, f"`keep` must be one of {KEEP_MODES}. Received: {self.keep!r}"),
            (1 <= self.feature_views <= 32, f"`feature_views` must be 1 to 32. Received: {self.feature_views}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        aug = self.augmentation
        for name in ("rotation", "zoom", "translation", "contrast", "brightness"):
            value = getattr(aug, name)
            if not 0.0 <= value <= 0.9:
                raise ConfigError(f"`augmentation.{name}` must be 0 to 0.9. Received: {value}")
        from core.backbones import BACKBONES  # local: backbones imports nothing heavy either

        if self.backbone not in BACKBONES:
            raise ConfigError(f"`backbone` {self.backbone!r} is not known. Choose one of: {', '.join(BACKBONES)}")
        minimum = BACKBONES[self.backbone].min_size
        if self.image_size != AUTO_SIZE and self.image_size < minimum:
            raise ConfigError(f"`image_size` {self.image_size} is below {self.backbone}'s minimum of {minimum} px")
        return self

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["head_units"] = list(self.head_units)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"Unknown config fields: {', '.join(unknown)}")
        values = dict(data)
        if isinstance(values.get("augmentation"), dict):
            aug_known = {f.name for f in dataclasses.fields(AugmentationConfig)}
            bad = sorted(set(values["augmentation"]) - aug_known)
            if bad:
                raise ConfigError(f"Unknown augmentation fields: {', '.join(bad)}")
            values["augmentation"] = AugmentationConfig(**values["augmentation"])
        if "head_units" in values:
            values["head_units"] = tuple(int(u) for u in values["head_units"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))
