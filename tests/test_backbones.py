"""Every registry entry builds, counts what it says, groups into blocks and preprocesses like its family."""

import keras
import numpy as np
import pytest

from core.network.backbones import BACKBONES, get_backbone
from core.network.freezing import UnfreezePlan
from core.network.model import preprocessing_layers

REQUIRED = {
    "vgg16",
    "resnet50",
    "mobilenet_v2_0.35",
    "mobilenet_v2_0.5",
    "mobilenet_v2_1.0",
    "mobilenet_0.25",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "efficientnet_v2_b0",
    "xception",
    "inception_v3",
    "densenet121",
    "convnext_tiny",
}


def test_registry_has_the_required_backbones():
    assert set(BACKBONES) >= REQUIRED and len(BACKBONES) >= 12
    for key, spec in BACKBONES.items():
        assert spec.key == key and key == key.lower()
        assert spec.min_size <= spec.default_size
        assert spec.hint and spec.label


@pytest.mark.parametrize("key", sorted(BACKBONES))
def test_each_backbone_builds_at_its_minimum_size(key):
    keras.backend.clear_session()
    spec = BACKBONES[key]
    base = spec.build(spec.min_size, weights=None)
    assert base.count_params() == spec.params
    names = [layer.name for layer in base.layers]
    blocks = spec.layer_blocks(names)
    assert len(blocks) == len(names)
    distinct = list(dict.fromkeys(blocks))
    assert len(distinct) >= 4, distinct
    assert spec.recommended_unfreeze in distinct
    mask = UnfreezePlan().mask(spec, [layer.name for layer in base.layers])
    assert 0 < sum(mask) < len(mask)
    assert mask[-1] and not mask[0]


@pytest.mark.parametrize("key", ["vgg16", "resnet50", "mobilenet_v2_0.5", "xception", "densenet121"])
def test_preprocessing_layers_match_the_family_preprocess_input(key):
    spec = BACKBONES[key]
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, size=(2, 8, 8, 3)).astype("float32")
    expected = spec.preprocess_input()(pixels.copy())
    got = pixels
    for layer in preprocessing_layers(spec.preprocessing):
        got = keras.ops.convert_to_numpy(layer(got))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_families_that_rescale_inside_have_no_outside_preprocessing():
    for key in ("mobilenet_v3_small", "efficientnet_b0", "efficientnet_v2_b0", "convnext_tiny"):
        assert BACKBONES[key].preprocessing == "none"
        assert preprocessing_layers("none") == []


def test_weights_file_names_follow_keras():
    assert BACKBONES["mobilenet_v2_0.5"].weights_filename(160) == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_160_no_top.h5"
    )
    assert BACKBONES["mobilenet_v2_0.5"].weights_filename(100) == (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
    )
    assert BACKBONES["mobilenet_0.25"].weights_filename(128) == "mobilenet_2_5_128_tf_no_top.h5"
    assert BACKBONES["vgg16"].weights_filename(160) == "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(KeyError, match="mobilenet_v2_0.5"):
        get_backbone("alexnet")


def test_auto_image_size_uses_the_native_size_only_for_photos_that_large():
    mobilenet, resnet, xception = BACKBONES["mobilenet_v2_0.5"], BACKBONES["resnet50"], BACKBONES["xception"]
    assert mobilenet.auto_image_size(375) == 224 and mobilenet.auto_image_size(224) == 224  # hymenoptera
    assert mobilenet.auto_image_size(128) == 160 and mobilenet.auto_image_size(223) == 160  # flowers5
    assert resnet.auto_image_size(128) == 224 == resnet.auto_image_size(600)  # its default is its native size
    assert xception.auto_image_size(64) == 299
