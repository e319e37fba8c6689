"""The run configuration: one frozen, validated object from the pages or the CLI to the worker.

Every setting is declared here once (`core.base.settings.setting`): its default, bounds or
choices, label, help and CLI flag. Validation below, the CLI parser, the page widgets and
the recipes are derived from these declarations. A run directory's `config.json` is
enough to repeat the run. Nothing in this module imports TensorFlow."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from core.base.settings import ConfigError, SettingInfo, check, declared, get_value, setting
from core.network.backbones import BACKBONES, DEFAULT_BACKBONE
from core.network.choices import (
    AUTO_SIZE,
    BEST_NEEDS_VALIDATION,
    CLASS_WEIGHTS,
    EPOCHS,
    FINETUNE_UNTIL,
    KEEP,
    OPTIMIZERS,
    PATIENCE,
    POOLINGS,
    PRECISIONS,
    RATE,
    AugmentationConfig,
    BackboneChoices,
    DeviceChoices,
    parse_image_size,
    parse_units,
)
from core.network.freezing import PlanError, UnfreezePlan

__all__ = ["AUTO_SIZE", "BEST_NEEDS_VALIDATION", "AugmentationConfig", "ConfigError", "RunConfig", "SETTINGS"]
CONFIG_VERSION = 4  # 2: flips as one choice, rotation in degrees, unfreeze as a plan; 3: fast_mode; 4: finetune_until


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run. The defaults were chosen by measurement (docs/recipes.md)."""

    data: str = setting(
        "demo",
        label="Photos",
        page="data",
        help="folder of class folders (or train/val/test folders), a .zip, 'demo' for the built-in set, "
        "or 'sample:flowers' / 'sample:cats_vs_dogs' to download",
        required=True,
    )
    val_data: str | None = setting(
        None,
        label="Validation photos",
        page="data",
        help="separate folder of class folders used for validation",
        kind=str,
        special={None: "taken from the photos"},
    )
    test_data: str | None = setting(
        None,
        label="Test photos",
        page="data",
        help="separate folder of class folders used only for the final test",
        kind=str,
        special={None: "taken from the photos"},
    )
    backbone: str = setting(
        DEFAULT_BACKBONE,
        label="Pretrained network",
        page="model",
        help="The network that already knows photos (trained on ImageNet).",
        choices=BackboneChoices(),
        recipe=True,
    )
    weights: str = setting(
        "imagenet",
        label="Starting weights",
        page="model",
        help="'imagenet' (Keras's cache or a download), 'none' (random: much less accurate), or a .h5 file's path",
        special={"imagenet": "pretrained on ImageNet", "none": "random (no pretraining)"},
    )
    image_size: int = setting(
        AUTO_SIZE,
        label="Image size (pixels)",
        page="model",
        help="Photos are resized to this many pixels square. Auto: the network's native size (224 for the "
        "MobileNets) when the photos are at least that large, else its faster default (160 for the MobileNets).",
        low=16,
        high=1024,
        special={AUTO_SIZE: "chosen from the photos"},
        parse=parse_image_size,
        show=lambda size: "auto" if size == AUTO_SIZE else str(size),
        recipe=True,
    )
    batch_size: int = setting(
        32, label="Batch size", help="Photos per training step.", low=1, high=4096, step=1, recipe=True
    )
    head_epochs: int = setting(
        30,  # cheap in fast mode: the head trains on stored features
        label="Head epochs",
        help="Phase 1: passes over the training photos while only the new head learns (the network stays frozen).",
        **EPOCHS,
        recipe=True,
    )
    finetune_epochs: int = setting(
        15,
        label="Fine-tune epochs",
        help="Phase 2: passes over the training photos while the top of the network learns too; 0 skips phase 2.",
        **EPOCHS,
        recipe=True,
    )
    head_learning_rate: float = setting(
        1e-2,
        label="Head learning rate",
        help="How big a step phase 1 takes. Too high and training falls apart; too low and it crawls.",
        flag="--head-lr",
        format="%.6f",
        **RATE,
    )
    finetune_learning_rate: float = setting(
        1e-4,
        label="Fine-tune learning rate",
        help="How big a step phase 2 takes. Keep it low: the network's pretrained knowledge is easily undone.",
        flag="--finetune-lr",
        format="%.7f",
        **RATE,
    )
    optimizer: str = setting(
        "adam", label="Optimizer (both phases)", help="How each step is taken.", choices=OPTIMIZERS, recipe=True
    )
    unfreeze: UnfreezePlan = setting(
        factory=UnfreezePlan,
        label="What learns in phase 2",
        page="model",
        help="auto (the network's recommended top blocks), none, all, top:N (last N layers), from:N (all but the "
        "first N), block:NAME (from that block on), layers:I,J (layer indices). BatchNormalization stays frozen.",
        parse=UnfreezePlan.parse,
        show=str,
        recipe=True,
    )
    pooling: str = setting(
        "avg",
        label="Pooling",
        page="model",
        help="How the network's feature map becomes a list of numbers.",
        choices=POOLINGS,
        recipe=True,
    )
    head_units: tuple[int, ...] = setting(
        (),
        label="Hidden layers (units, comma-separated)",
        page="model",
        help="Hidden Dense layers in the head, e.g. 256 or 1024,256; empty for none.",
        low=1,
        high=65536,
        parse=parse_units,
        show=lambda units: ",".join(str(u) for u in units),
        recipe=True,
    )
    dropout: float = setting(
        0.5,
        label="Dropout",
        page="model",
        help="Share of the head's inputs switched off at random while training, so it cannot rely on a few.",
        low=0.0,
        high=1.0,
        below_high=True,
        step=0.05,
        widget="slider",
        recipe=True,
    )
    augmentation: AugmentationConfig = dataclasses.field(default_factory=AugmentationConfig)
    early_stopping_patience: int = setting(
        0,  # off: with the cosine schedule, the epochs after a plateau are the ones that settle the weights
        label="Stop a phase early after this many epochs without improvement (0: never)",
        help="See 'Model to keep' for which epoch is kept.",
        flag="--early-stopping",
        **PATIENCE,
    )
    finetune_until: str = setting(
        "pays",
        label="How long to fine-tune",
        help="Whether phase 2 may be skipped or end early. Where the new head alone is already as good as it "
        "gets, fine-tuning only costs time; with fewer validation photos than needed to tell, every epoch runs.",
        choices=FINETUNE_UNTIL,
        recipe=True,
    )
    reduce_lr_patience: int = setting(
        2,
        label="Lower the learning rate after this many epochs without progress (0: never)",
        help="Used only when the learning rate does not follow a cosine.",
        flag="--reduce-lr",
        **PATIENCE,
    )
    cosine_decay: bool = setting(
        True,
        label="Learning rate follows a cosine",
        help="Phase 2 rises from a tenth of its rate to the full rate over its first epoch; then each phase's "
        "rate falls along a half cosine to a hundredth of it by the phase's last epoch.",
        recipe=True,
    )
    average_weights: bool = setting(
        True,
        label="Average the weights of the last steps",
        help="Validates and keeps a moving average of the weights over about one epoch, so the accuracy moves "
        "less from one epoch to the next.",
        recipe=True,
    )
    keep: str = setting(
        "auto",
        # Measured (docs/recipes.md): on hymenoptera (36 validation photos) the final model scored 0.919 over six
        # seeds against 0.911, within noise; on flowers5 (650) the best epoch was slightly better (0.783/0.780).
        label="Model to keep when training finishes",
        help="With few validation photos, the most accurate epoch is mostly luck: one photo moves the accuracy by "
        "several points. The final model, settled by the falling learning rate and the averaging, is then the "
        "better choice. A stopped run keeps its most accurate epoch.",
        choices=KEEP,
        recipe=True,
    )
    class_weights: str = setting(
        "auto", label="Class weights", help="Even out classes with fewer photos.", choices=CLASS_WEIGHTS
    )
    fast_mode: bool = setting(
        True,
        label="Fast mode",
        old_flags=("--feature-cache",),
        help="Computes the frozen layers' output once and reuses it in every epoch. The trained model is the "
        "same complete network either way. Off: every photo goes through the whole network in every epoch, as "
        "in a plain Keras script.",
    )
    feature_views: int = setting(
        8,  # the fine-tuned blocks see 8 versions of each photo, not 2: less overfitting
        label="Versions of each training photo to prepare in fast mode (the original plus augmented copies)",
        help="More versions give augmentation more variety, and take longer to prepare. With 1, augmentation "
        "is not used in fast mode.",
        low=1,
        high=32,
        step=1,
        recipe=True,
    )
    devices: str = setting(
        "all",
        label="Devices to train on",
        help="With two or more, each step's batch is split across them (tf.distribute.MirroredStrategy); the "
        "batch size is per device and the learning rates grow with the number of devices. A number: that many "
        "GPUs, or processor parts when the processor is split (STUDIO_CPU_DEVICES).",
        choices=DeviceChoices(),
    )
    precision: str = setting(
        "auto",
        label="Number precision",
        help="Mixed precision computes in float16 and keeps the weights in float32: about twice as fast on GPUs "
        "with tensor cores, with the same accuracy. The softmax stays in float32.",
        choices=PRECISIONS,
    )
    val_fraction: float = setting(
        0.15,
        label="Validation share",
        page="data",
        help="Share of each class held out to score each epoch (when the data has no validation folder).",
        low=0.0,
        high=0.5,
        above_low=True,
        below_high=True,
        step=0.05,
        widget="slider",
    )
    test_fraction: float = setting(
        0.15,
        label="Test share",
        page="data",
        help="Share of each class kept aside for the final score (when the data has no test folder).",
        low=0.0,
        high=0.5,
        below_high=True,
        step=0.05,
        widget="slider",
    )
    seed: int = setting(
        42,
        label="Seed (same seed, same result)",
        help="Makes splits and training repeatable.",
        low=0,
        high=2**31 - 1,
        step=1,
    )
    name: str = setting("", label="Name", help="A name for the run.")

    def validate(self) -> RunConfig:
        """Return self if every value is usable, else raise ConfigError naming the first bad one."""
        for info in SETTINGS.values():
            check(info, get_value(self, info.name))
        if self.head_epochs + self.finetune_epochs == 0:
            raise ConfigError("Head epochs and fine-tune epochs are both 0: nothing would train.", "head_epochs")
        if self.val_fraction + self.test_fraction >= 0.8:
            raise ConfigError(
                "The validation and test shares leave too few photos for training: together they must be below 0.8.",
                "test_fraction",
            )
        minimum = BACKBONES[self.backbone].min_size
        if self.image_size != AUTO_SIZE and self.image_size < minimum:
            raise ConfigError(
                f"Image size {self.image_size} is below {BACKBONES[self.backbone].label}'s minimum of {minimum} px.",
                "image_size",
            )
        return self

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["head_units"] = list(self.head_units)
        data["unfreeze"] = str(self.unfreeze)
        data["version"] = CONFIG_VERSION
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Raises:
        ConfigError: unknown fields, or values of the wrong form (bounds are checked by `validate`).
        """
        values = _upgrade(dict(data))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown config fields: {', '.join(unknown)}")
        if isinstance(values.get("augmentation"), dict):
            aug_known = {f.name for f in dataclasses.fields(AugmentationConfig)}
            bad = sorted(set(values["augmentation"]) - aug_known)
            if bad:
                raise ConfigError(f"Unknown augmentation fields: {', '.join(bad)}")
            values["augmentation"] = AugmentationConfig(**values["augmentation"])
        if "head_units" in values:
            values["head_units"] = tuple(int(u) for u in values["head_units"])
        if "unfreeze" in values:
            try:
                values["unfreeze"] = UnfreezePlan.parse(values["unfreeze"])
            except PlanError as error:
                raise ConfigError(str(error), "unfreeze") from None
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(json.loads(text))


def _upgrade(values: dict[str, Any]) -> dict[str, Any]:
    """A config written by an earlier version, in today's form (runs made before stay readable)."""
    version = values.pop("version", 1)
    aug = values.get("augmentation")
    if version < 2 and isinstance(aug, dict):
        aug = dict(aug)
        horizontal, vertical = aug.pop("horizontal_flip", True), aug.pop("vertical_flip", False)
        aug["flip"] = {(False, False): "none", (True, False): "horizontal", (False, True): "vertical"}.get(
            (horizontal, vertical), "both"
        )
        if "rotation" in aug:
            aug["rotation"] = round(float(aug["rotation"]) * 360.0, 4)  # was a fraction of a full turn
        values["augmentation"] = aug
    if version < 3 and "feature_cache" in values:  # fast mode's old name
        values["fast_mode"] = values.pop("feature_cache")
    if version < 4:  # runs made before fine-tuning could end early ran every epoch set (a resumed one still does)
        values.setdefault("finetune_until", "all")
    return values


SETTINGS: dict[str, SettingInfo] = {info.name: info for info in declared(RunConfig)}
