"""The classifier's shape and the freezing plan applied to it."""

import keras
import numpy as np
import pytest

from core.network.backbones import BACKBONES
from core.network.config import AugmentationConfig
from core.network.freezing import PlanError, UnfreezePlan, count_trainable, layer_table, learns_in_phase2, set_phase
from core.network.model import build_augmenter, build_classifier

SPEC = BACKBONES["mobilenet_v2_0.35"]


@pytest.fixture(scope="module")
def built():
    keras.backend.clear_session()
    base = SPEC.build(32, weights=None)
    model = build_classifier(base, SPEC, num_classes=3, image_size=32, augmentation=AugmentationConfig())
    return model, base


def finetune_mask(base, spec, plan: str) -> list[bool]:
    return UnfreezePlan.parse(plan).mask(spec, [layer.name for layer in base.layers])


def _bn_trainable(base):
    return [
        layer.name for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def test_raw_pixels_of_any_size_give_probabilities(built):
    model, _ = built
    for size in (32, 57):
        out = keras.ops.convert_to_numpy(model(np.full((2, size, size, 3), 128.0, "float32")))
        assert out.shape == (2, 3)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_augmentation_is_off_at_inference(built):
    model, _ = built
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    a = keras.ops.convert_to_numpy(model(x, training=False))
    b = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(a, b)
    augmenter = build_augmenter(AugmentationConfig(rotation=72.0, zoom=0.2), seed=1)
    assert not np.allclose(keras.ops.convert_to_numpy(augmenter(x, training=True)), x)


def test_phase_one_trains_only_the_head(built):
    model, base = built
    set_phase(base, 1, [True] * len(base.layers))
    head = model.get_layer("predictions")
    assert count_trainable(model) == int(np.prod(head.kernel.shape)) + int(np.prod(head.bias.shape))


@pytest.mark.parametrize("unfreeze", ["top:20", "block:block_13", "all", "layers:150,151"])
def test_phase_two_unfreezes_the_plan_but_never_batch_norm(built, unfreeze):
    model, base = built
    mask = finetune_mask(base, SPEC, unfreeze)
    set_phase(base, 1, mask)
    phase1 = count_trainable(model)
    set_phase(base, 2, mask)
    phase2 = count_trainable(model)
    assert phase2 > phase1
    assert _bn_trainable(base) == []
    expected = sum(
        count
        for layer, on in zip(base.layers, mask)
        if on and not isinstance(layer, keras.layers.BatchNormalization)
        for count in [sum(int(np.prod(w.shape)) for w in layer.weights)]
    )
    assert phase2 - phase1 == expected


def test_top_n_counts_layers_from_the_end(built):
    _, base = built
    mask = finetune_mask(base, SPEC, "top:5")
    assert sum(mask) == 5 and all(mask[-5:])


def test_block_unfreeze_starts_at_the_block(built):
    _, base = built
    mask = finetune_mask(base, SPEC, "block:block_16")
    first = mask.index(True)
    assert base.layers[first].name.startswith("block_16_") and all(mask[first:])


def test_bad_plans_name_what_exists(built):
    _, base = built
    with pytest.raises(PlanError, match="no block 'block_99'.*block_16"):
        finetune_mask(base, SPEC, "block:block_99")
    with pytest.raises(PlanError, match="layers"):
        finetune_mask(base, SPEC, "layers:9999")


def test_layer_table_counts_weights_as_keras_does_and_batch_norm_never_learns(built):
    _, base = built
    rows = layer_table(base, SPEC)
    assert len(rows) == len(base.layers) and sum(r.params for r in rows) == base.count_params()
    bn = [r for r in rows if r.is_batch_norm]
    assert bn and not any(learns_in_phase2(True, r.is_batch_norm, r.params > 0) for r in bn)
    assert {r.block for r in rows} >= {"stem", "block_0", "block_16", "top"}


def test_model_saves_and_loads_in_safe_mode(built, tmp_path):
    model, _ = built
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("pooling, head_units", [("avg", ()), ("max", (16,)), ("flatten", (16, 8))])
def test_head_shapes(pooling, head_units):
    keras.backend.clear_session()
    base = SPEC.build(32, weights=None)
    model = build_classifier(base, SPEC, 2, 32, AugmentationConfig.off(), pooling=pooling, head_units=head_units)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [d.units for d in dense] == [*head_units, 2]
