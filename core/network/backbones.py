"""The backbone registry: one entry per `keras.applications` choice.

Each entry knows how to build its headless base, how its family preprocesses raw
pixels, its default and minimum input size, how its layers group into blocks (which
is what makes "unfreeze from block 5" possible) and the official weights file name.
Adding a backbone is adding one entry. Importing this module does not import Keras.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BackboneSpec:
    """One pretrained network the tool can fine-tune.

    Attributes:
        key: snake_case id with the width as suffix, e.g. `mobilenet_v2_0.5`.
        constructor: name of the function in `keras.applications`.
        module: the `keras.applications` module holding its `preprocess_input`.
        preprocessing: how raw 0-255 RGB becomes the network's input: `tf` ([-1, 1]),
            `caffe` (BGR, ImageNet mean subtracted), `torch` ([0, 1], ImageNet mean/std)
            or `none` (the network rescales inside).
        weights_file: Keras's file name for the headless ImageNet weights; `{size}`
            stands for the input size where Keras names files by it.
        weights_glob: regex matching the same family and width at any input size.
        block_rules: (regex on layer name, block name template) tried in order; a
            layer that matches none belongs to the block of the layer before it.
        block_closer: for families with generic layer names, a regex for the layer
            that ends each block (the block is named after it).
        recommended_unfreeze: the block phase 2 unfreezes from by default.
    """

    key: str
    label: str
    constructor: str
    module: str
    preprocessing: str
    default_size: int
    min_size: int
    params: int
    weights_file: str
    weights_glob: str
    hint: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    block_rules: tuple[tuple[str, str], ...] = ()
    stem_block: str = "stem"
    block_closer: str = ""
    recommended_unfreeze: str = ""
    sized_weights: bool = False

    @property
    def size_mb(self) -> float:
        """Weights size on disk (float32), in megabytes."""
        return self.params * 4 / 1e6

    def weights_filename(self, image_size: int) -> str:
        """The file name Keras looks for in its cache for this input size."""
        size = self.keras_weights_size(image_size)
        return self.weights_file.format(size=size)

    def keras_weights_size(self, image_size: int) -> int:
        """MobileNets only ship weights for a few sizes; Keras falls back to 224 otherwise."""
        if not self.sized_weights:
            return image_size
        return image_size if image_size in (96, 128, 160, 192, 224) else 224

    @property
    def native_size(self) -> int:
        """The size the ImageNet weights were trained at (the MobileNets' default_size is a faster 160)."""
        return 224 if self.sized_weights else self.default_size

    def auto_image_size(self, photo_side: int) -> int:
        """The image size `auto` (RunConfig.image_size 0) uses for photos whose typical shorter side is
        `photo_side` pixels: the weights' native size when the photos are at least that large, else
        default_size. Measured (docs/recipes.md): on hymenoptera (375 px photos) 224 px scored 0.919
        over six seeds against 0.907 at 160 (within seed noise; the frozen features alone: 0.935
        against 0.922); flowers5 (128 px photos) has no detail to gain and would train twice as long.
        """
        return self.native_size if photo_side >= self.native_size else self.default_size

    def build(self, image_size: int, weights: str | None = None):
        """Build the headless base. `weights` is None, `imagenet` or a file path."""
        import keras

        constructor = getattr(keras.applications, self.constructor)
        return constructor(
            include_top=False,
            weights=weights,
            input_shape=(image_size, image_size, 3),
            **self.kwargs,
        )

    def preprocess_input(self) -> Callable:
        """The family's own `preprocess_input`, for reference and tests."""
        import importlib

        return importlib.import_module(f"keras.applications.{self.module}").preprocess_input

    def layer_blocks(self, layer_names: Sequence[str]) -> list[str]:
        """The block each layer belongs to, in layer order."""
        if self.block_closer:
            closer = re.compile(self.block_closer)
            blocks: list[str] = []
            pending = 0
            for name in layer_names:
                pending += 1
                if closer.match(name):
                    blocks.extend([name] * pending)
                    pending = 0
            blocks.extend(["top"] * pending)
            return blocks
        rules = [(re.compile(pattern), template) for pattern, template in self.block_rules]
        blocks = []
        current = self.stem_block
        for name in layer_names:
            for pattern, template in rules:
                match = pattern.match(name)
                if match:
                    current = template.format(*match.groups())
                    break
            blocks.append(current)
        return blocks


def _mobilenet_v2(alpha: float, params: int, hint: str) -> BackboneSpec:
    return BackboneSpec(
        key=f"mobilenet_v2_{alpha}",
        label=f"MobileNetV2 (width {alpha})",
        constructor="MobileNetV2",
        module="mobilenet_v2",
        preprocessing="tf",
        default_size=160,
        min_size=32,
        params=params,
        weights_file=f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{{size}}_no_top.h5",
        weights_glob=rf"^mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{re.escape(str(alpha))}_\d+_no_top\.h5$",
        hint=hint,
        kwargs={"alpha": alpha},
        block_rules=((r"^block_(\d+)_", "block_{}"), (r"^expanded_conv_", "block_0"), (r"^(Conv_1|out_relu)", "top")),
        # From block_6 (the middle of the network), with the default's warm-up, averaging and 8 stored
        # versions: 0.783 against 0.739 from block_13 on flowers5, 0.898 against 0.915 on hymenoptera
        # (docs/recipes.md).
        recommended_unfreeze="block_6",
        sized_weights=True,
    )


def _vgg(depth: int, params: int, hint: str) -> BackboneSpec:
    return BackboneSpec(
        key=f"vgg{depth}",
        label=f"VGG{depth}",
        constructor=f"VGG{depth}",
        module=f"vgg{depth}",
        preprocessing="caffe",
        default_size=224,
        min_size=32,
        params=params,
        weights_file=f"vgg{depth}_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_glob=rf"^vgg{depth}_weights_tf_dim_ordering_tf_kernels_notop\.h5$",
        hint=hint,
        block_rules=((r"^(block\d+)_", "{}"),),
        stem_block="block1",
        recommended_unfreeze="block5",
    )


_RESNET_STAGES = ((r"^conv(\d)_", "conv{}"), (r"^post_", "conv5"))

_SPECS = [
    _mobilenet_v2(0.35, 410_208, "Fastest. Good for a quick first model on a laptop."),
    _mobilenet_v2(0.5, 706_224, "Fast and accurate enough for most photo sets. The default."),
    _mobilenet_v2(1.0, 2_257_984, "Fast, a little more accurate than the narrower MobileNets."),
    BackboneSpec(
        key="mobilenet_0.25",
        label="MobileNet (width 0.25)",
        constructor="MobileNet",
        module="mobilenet",
        preprocessing="tf",
        default_size=160,
        min_size=32,
        params=218_544,
        weights_file="mobilenet_2_5_{size}_tf_no_top.h5",
        weights_glob=r"^mobilenet_2_5_\d+_tf_no_top\.h5$",
        hint="The smallest network here: tiny files, quick on any machine, less accurate.",
        kwargs={"alpha": 0.25},
        block_rules=((r"^conv_(?:dw|pw|pad)_(\d+)", "block_{}"),),
        stem_block="block_0",
        recommended_unfreeze="block_11",
        sized_weights=True,
    ),
    BackboneSpec(
        key="mobilenet_v3_small",
        label="MobileNetV3 Small",
        constructor="MobileNetV3Small",
        module="mobilenet_v3",
        preprocessing="none",
        default_size=224,
        min_size=32,
        params=939_120,
        weights_file="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        weights_glob=r"^weights_mobilenet_v3_small_224_1\.0_float_no_top_v2\.h5$",
        hint="Fast and small, made for phones.",
        block_rules=((r"^expanded_conv_(\d+)_", "block_{}"), (r"^expanded_conv_", "block_0"), (r"^conv_1", "top")),
        recommended_unfreeze="block_9",
    ),
    BackboneSpec(
        key="mobilenet_v3_large",
        label="MobileNetV3 Large",
        constructor="MobileNetV3Large",
        module="mobilenet_v3",
        preprocessing="none",
        default_size=224,
        min_size=32,
        params=2_996_352,
        weights_file="weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        weights_glob=r"^weights_mobilenet_v3_large_224_1\.0_float_no_top_v2\.h5$",
        hint="Fast, more accurate than V3 Small.",
        block_rules=((r"^expanded_conv_(\d+)_", "block_{}"), (r"^expanded_conv_", "block_0"), (r"^conv_1", "top")),
        recommended_unfreeze="block_12",
    ),
    BackboneSpec(
        key="efficientnet_b0",
        label="EfficientNetB0",
        constructor="EfficientNetB0",
        module="efficientnet",
        preprocessing="none",
        default_size=224,
        min_size=32,
        params=4_049_571,
        weights_file="efficientnetb0_notop.h5",
        weights_glob=r"^efficientnetb0_notop\.h5$",
        hint="Accurate for its size; slower than the MobileNets on a CPU.",
        block_rules=((r"^block(\d)", "block{}"), (r"^top_", "top")),
        recommended_unfreeze="block6",
    ),
    BackboneSpec(
        key="efficientnet_v2_b0",
        label="EfficientNetV2 B0",
        constructor="EfficientNetV2B0",
        module="efficientnet_v2",
        preprocessing="none",
        default_size=224,
        min_size=32,
        params=5_919_312,
        weights_file="efficientnetv2-b0_notop.h5",
        weights_glob=r"^efficientnetv2-b0_notop\.h5$",
        hint="Accurate and trains quickly; a good step up from MobileNet.",
        block_rules=((r"^block(\d)", "block{}"), (r"^top_", "top")),
        recommended_unfreeze="block6",
    ),
    BackboneSpec(
        key="resnet50",
        label="ResNet50",
        constructor="ResNet50",
        module="resnet",
        preprocessing="caffe",
        default_size=224,
        min_size=32,
        params=23_587_712,
        weights_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_glob=r"^resnet50_weights_tf_dim_ordering_tf_kernels_notop\.h5$",
        hint="The classic. Accurate, slow on a CPU.",
        block_rules=_RESNET_STAGES,
        stem_block="conv1",
        recommended_unfreeze="conv5",
    ),
    BackboneSpec(
        key="resnet50_v2",
        label="ResNet50 V2",
        constructor="ResNet50V2",
        module="resnet_v2",
        preprocessing="tf",
        default_size=224,
        min_size=32,
        params=23_564_800,
        weights_file="resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_glob=r"^resnet50v2_weights_tf_dim_ordering_tf_kernels_notop\.h5$",
        hint="ResNet50 with a cleaner design; accurate, slow on a CPU.",
        block_rules=_RESNET_STAGES,
        stem_block="conv1",
        recommended_unfreeze="conv5",
    ),
    _vgg(16, 14_714_688, "The textbook network (Chollet's book). Large and slow, but simple."),
    _vgg(
        19,
        20_024_384,
        "VGG16 with three more layers; the network of many older fine-tuning tutorials. Large and slow.",
    ),
    BackboneSpec(
        key="xception",
        label="Xception",
        constructor="Xception",
        module="xception",
        preprocessing="tf",
        default_size=299,
        min_size=71,
        params=20_861_480,
        weights_file="xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_glob=r"^xception_weights_tf_dim_ordering_tf_kernels_notop\.h5$",
        hint="The Keras guide's network. Accurate, slow on a CPU.",
        block_rules=((r"^(block\d+)_", "{}"),),
        stem_block="block1",
        recommended_unfreeze="block13",
    ),
    BackboneSpec(
        key="inception_v3",
        label="InceptionV3",
        constructor="InceptionV3",
        module="inception_v3",
        preprocessing="tf",
        default_size=299,
        min_size=75,
        params=21_802_784,
        weights_file="inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_glob=r"^inception_v3_weights_tf_dim_ordering_tf_kernels_notop\.h5$",
        hint="Accurate, slow on a CPU.",
        block_closer=r"^mixed\d+$",
        recommended_unfreeze="mixed9",
    ),
    BackboneSpec(
        key="densenet121",
        label="DenseNet121",
        constructor="DenseNet121",
        module="densenet",
        preprocessing="torch",
        default_size=224,
        min_size=32,
        params=7_037_504,
        weights_file="densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        weights_glob=r"^densenet121_weights_tf_dim_ordering_tf_kernels_notop\.h5$",
        hint="Accurate with few weights; slow on a CPU.",
        block_rules=((r"^conv(\d)_", "conv{}"),),
        stem_block="conv1",
        recommended_unfreeze="conv5",
    ),
    BackboneSpec(
        key="convnext_tiny",
        label="ConvNeXt Tiny",
        constructor="ConvNeXtTiny",
        module="convnext",
        preprocessing="none",
        default_size=224,
        min_size=32,
        params=27_820_128,
        weights_file="convnext_tiny_notop.h5",
        weights_glob=r"^convnext_tiny_notop\.h5$",
        hint="A modern, very accurate network. The slowest here on a CPU.",
        block_rules=((r".*_stage_(\d)_", "stage_{}"), (r"^layer_normalization", "top")),
        recommended_unfreeze="stage_3",
    ),
]

BACKBONES: dict[str, BackboneSpec] = {spec.key: spec for spec in _SPECS}
DEFAULT_BACKBONE = "mobilenet_v2_0.5"


def get_backbone(key: str) -> BackboneSpec:
    """Look up a backbone, with the list of valid keys in the error."""
    try:
        return BACKBONES[key]
    except KeyError:
        raise KeyError(f"Unknown backbone {key!r}. Choose one of: {', '.join(BACKBONES)}") from None
