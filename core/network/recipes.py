"""Recipes: the well-known fine-tuning recipes, and the tool's own default, as config presets.

A recipe fills the settings a recipe decides (backbone, image size, head, optimizer,
learning rates, epochs, augmentation, which layers unfreeze in phase 2); everything
else (the data, the seed, the splits) stays as the user chose. Any setting can be
changed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.network.choices import FINETUNE_PATIENCE, HEAD_FITS
from core.network.config import SETTINGS, AugmentationConfig, RunConfig
from core.network.freezing import UnfreezePlan

# What a recipe decides (declared with the settings): the data, splits, seed, weights and name stay the user's.
RECIPE_SETTINGS = tuple(name for name, info in SETTINGS.items() if info.declaration.recipe)
RECIPE_FIELDS = tuple(dict.fromkeys(name.split(".")[0] for name in RECIPE_SETTINGS))


@dataclass(frozen=True)
class Recipe:
    key: str
    title: str
    source: str  # where it comes from
    what: str  # what it does, in a sentence, with the numbers a specialist wants
    settings: dict[str, Any]
    # The same recipe on a backbone whose weights ship with the project (for the benchmark offline).
    offline: dict[str, Any] = field(default_factory=dict)
    plain: str = ""  # what it does in words anyone uses (else: a published recipe, to compare with)

    @property
    def in_words(self) -> str:
        return self.plain or f"A published recipe ({self.title}), to compare your results with."

    def config(self, base: RunConfig | None = None) -> RunConfig:
        """`base` (or the defaults) with this recipe's settings."""
        base = base or RunConfig()
        defaults = RunConfig()
        values = {name: getattr(defaults, name) for name in RECIPE_FIELDS}
        values.update(self.settings)
        return base.replace(**values)


_DEFAULTS = RunConfig()

# What every classic recipe shares: a constant learning rate, no averaging, no early stopping, every epoch,
# the most accurate epoch kept, and fast mode's 2 stored versions of each photo (as these recipes
# were first measured here).
_AS_WRITTEN: dict[str, Any] = {
    "keep": "best",
    "early_stopping_patience": 0,
    "finetune_until": "all",
    "reduce_lr_patience": 0,
    "cosine_decay": False,
    "average_weights": False,
    "feature_views": 2,
}

RECIPES: dict[str, Recipe] = {
    "studio": Recipe(
        key="studio",
        title="Fine-Tune Studio default",
        plain=(
            "A network that already knows photos learns your classes in two steps: first a new last layer, then "
            "the top of the network as well, on slightly altered copies of your photos, for as long as that still "
            "improves the results. The most accurate model this tool makes; minutes on a laptop, less where the "
            "first step is already as good as it gets."
        ),
        source="This tool's default, chosen by measurement on the shared datasets (docs/recipes.md).",
        what=(
            "MobileNetV2 0.5 at 224 px for photos at least that large (160 px for smaller ones), average "
            f"pooling, Dropout {_DEFAULTS.dropout}; "
            f"the new head for {_DEFAULTS.head_epochs} epochs at Adam {_DEFAULTS.head_learning_rate:g} (quick: it "
            f"trains on stored features), then the top blocks for {_DEFAULTS.finetune_epochs} epochs at "
            f"{_DEFAULTS.finetune_learning_rate:g} after a one-epoch warm-up; given 200 or more validation photos, "
            f"skipped where the head alone fits {HEAD_FITS:.0%} of its training photos and ended once "
            f"{FINETUNE_PATIENCE} epochs in a row do not improve the validation photos; each epoch makes one more "
            "altered version of the photos as it begins. Learning rates fall along a cosine, "
            "the weights are averaged over about an epoch, and the final, settled model is kept (the most "
            "accurate epoch instead, given 200 or more validation photos). Flips, small rotations and zoom."
        ),
        settings={},
    ),
    "quick": Recipe(
        key="quick",
        title="Quick first model (seconds, for demos and first looks)",
        plain=(
            "Only a new last layer learns, from what the network that already knows photos sees in each of "
            "yours: a model in seconds, a few points less accurate than the default."
        ),
        source="Computes each photo's features once and trains only a new head on them, as Teachable Machine does.",
        what=(
            "MobileNetV2 0.5 at 224 px, one pass of the pretrained network over each photo, then the new head "
            "for 30 epochs on those stored features (Adam 1e-2, cosine, averaged weights). No fine-tuning and no "
            "augmented copies: the fastest model this tool makes, a few points below the default."
        ),
        settings={
            # 224 px even for smaller photos: on flowers5 (128 px photos) the head scored 0.735 on features at
            # 224 px against 0.718 at 160 px (seed 42), for 4 s more (bench/quick.py, docs/speed.md).
            "image_size": 224,
            "head_epochs": 30,
            "finetune_epochs": 0,
            "feature_views": 1,
            "keep": "final",
        },
    ),
    "keras_guide": Recipe(
        key="keras_guide",
        title="Keras transfer-learning guide",
        source="F. Chollet, 'Transfer learning & fine-tuning', keras.io/guides/transfer_learning.",
        what=(
            "Xception at 150 px, frozen base called with training=False, average pooling, Dropout 0.2, "
            "Adam 1e-3; then the whole base unfrozen at Adam 1e-5. Flips and rotations up to 36 degrees."
        ),
        settings={
            "backbone": "xception",
            "image_size": 150,
            "head_epochs": 20,
            "finetune_epochs": 10,
            "head_learning_rate": 1e-3,
            "finetune_learning_rate": 1e-5,
            "optimizer": "adam",
            "unfreeze": UnfreezePlan.parse("all"),
            "pooling": "avg",
            "head_units": (),
            "dropout": 0.2,
            "augmentation": AugmentationConfig(flip="horizontal", rotation=36.0, zoom=0.0),
            **_AS_WRITTEN,
        },
        offline={"backbone": "mobilenet_v2_0.5", "image_size": 160},
    ),
    "chollet_vgg16": Recipe(
        key="chollet_vgg16",
        title="Deep Learning with Python (VGG16)",
        source="F. Chollet, 'Deep Learning with Python', 2nd ed., chapter 8: cats vs dogs, about 97.7% test accuracy.",
        what=(
            "VGG16 at 180 px, Flatten, Dense(256), Dropout 0.5, RMSprop; then block5_conv1 to block5_conv3 "
            "unfrozen at RMSprop 1e-5. Flips, rotations up to 36 degrees, zoom 0.2."
        ),
        settings={
            "backbone": "vgg16",
            "image_size": 180,
            "head_epochs": 50,
            "finetune_epochs": 30,
            "head_learning_rate": 1e-3,
            "finetune_learning_rate": 1e-5,
            "optimizer": "rmsprop",
            "unfreeze": UnfreezePlan.parse("block:block5"),
            "pooling": "flatten",
            "head_units": (256,),
            "dropout": 0.5,
            "augmentation": AugmentationConfig(flip="horizontal", rotation=36.0, zoom=0.2),
            **_AS_WRITTEN,
        },
        offline={"backbone": "mobilenet_v2_0.5", "image_size": 160, "unfreeze": UnfreezePlan.parse("block:block_16")},
    ),
    "blog_dense1024": Recipe(
        key="blog_dense1024",
        title="Blog recipe (Dense 1024)",
        source="The common blog-post recipe: global average pooling, Dense(1024), softmax, Adam 1e-4.",
        what=(
            "Average pooling, Dense(1024, relu), softmax, Adam 1e-4; then the last four layers unfrozen, "
            "Adam 1e-4. No augmentation."
        ),
        settings={
            "backbone": "mobilenet_v2_1.0",
            "image_size": 224,
            "head_epochs": 10,
            "finetune_epochs": 10,
            "head_learning_rate": 1e-4,
            "finetune_learning_rate": 1e-4,
            "optimizer": "adam",
            "unfreeze": UnfreezePlan.parse("top:4"),
            "pooling": "avg",
            "head_units": (1024,),
            "dropout": 0.0,
            "augmentation": AugmentationConfig.off(),
            **_AS_WRITTEN,
        },
        offline={"backbone": "mobilenet_v2_0.5", "image_size": 160},
    ),
    "freeze_first_five": Recipe(
        key="freeze_first_five",
        title="Freeze the first five layers",
        source="The 'freeze the first 5 layers, train the rest' recipe of many Keras fine-tuning tutorials.",
        what=(
            "VGG19 at 224 px, Flatten, Dense(1024), Dense(1024), Dropout 0.5; the first five layers stay frozen "
            "and everything after them trains with SGD 1e-4, momentum 0.9."
        ),
        settings={
            "backbone": "vgg19",
            "image_size": 224,
            "head_epochs": 5,
            "finetune_epochs": 10,
            "head_learning_rate": 1e-4,
            "finetune_learning_rate": 1e-4,
            "optimizer": "sgd",
            "unfreeze": UnfreezePlan.parse("from:5"),
            "pooling": "flatten",
            "head_units": (1024, 1024),
            "dropout": 0.5,
            "augmentation": AugmentationConfig(flip="horizontal", rotation=0.0, zoom=0.0),
            **_AS_WRITTEN,
        },
        offline={"backbone": "mobilenet_v2_0.5", "image_size": 160},
    ),
}


def get_recipe(name: str) -> Recipe:
    """Raises:
    KeyError: an unknown recipe, with the known ones named.
    """
    if name not in RECIPES:
        raise KeyError(f"Unknown recipe {name!r}. Choose one of: {', '.join(RECIPES)}")
    return RECIPES[name]


def matching_recipe(config: RunConfig) -> str | None:
    """The recipe whose settings `config` has exactly, if any (to show which preset is in use)."""
    for key, recipe in RECIPES.items():
        if all(getattr(config, name) == getattr(recipe.config(), name) for name in RECIPE_FIELDS):
            return key
    return None
