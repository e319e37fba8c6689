"""The unfreeze plan: read once from text, printed back the same, resolved per backbone, described in words."""

import pytest

from core.network.backbones import BACKBONES
from core.network.freezing import PlanError, UnfreezeKind, UnfreezePlan, learns_in_phase2

SPEC = BACKBONES["mobilenet_v2_0.35"]
NAMES = ["Conv1", "bn_Conv1", "block_1_expand", "block_1_bn", "block_2_expand", "block_2_bn", "Conv_1", "out_relu"]


@pytest.mark.parametrize("text", ["auto", "none", "all", "top:20", "from:5", "block:block_13", "layers:3,7,150"])
def test_each_form_reads_and_prints_back_the_same(text):
    plan = UnfreezePlan.parse(text)
    assert str(plan) == text and UnfreezePlan.parse(str(plan)) == plan


@pytest.mark.parametrize("text", ["half", "top:x", "top:", "top:-1", "block:", "layers:a", "layers:-2", "none:3", ""])
def test_anything_else_is_refused_with_the_forms_listed(text):
    with pytest.raises(PlanError, match="auto, none, all, top:N, from:N, block:NAME or layers:I,J"):
        UnfreezePlan.parse(text)


def test_auto_becomes_the_backbones_recommendation_and_says_so():
    plan = UnfreezePlan()
    assert plan.resolve(SPEC) == UnfreezePlan(UnfreezeKind.BLOCK, block=SPEC.recommended_unfreeze)
    assert (
        plan.describe(SPEC) == f"the top of the network, from its part “{SPEC.recommended_unfreeze}” on (recommended)"
    )
    assert UnfreezePlan.parse("none").trains_nothing and UnfreezePlan(UnfreezeKind.LAYERS).trains_nothing


def test_masks_from_layer_names_alone():
    assert UnfreezePlan.parse("top:2").mask(SPEC, NAMES) == [False] * 6 + [True] * 2
    assert UnfreezePlan.parse("block:block_2").mask(SPEC, NAMES) == [False] * 4 + [True] * 4
    assert UnfreezePlan.parse("layers:0,7").mask(SPEC, NAMES) == [True] + [False] * 6 + [True]
    assert UnfreezePlan.parse("none").mask(SPEC, NAMES) == [False] * 8
    with pytest.raises(PlanError, match="Its blocks: stem, block_1, block_2, top"):
        UnfreezePlan.parse("block:block_9").mask(SPEC, NAMES)


def test_batch_norm_of_a_pretrained_base_never_learns():
    assert learns_in_phase2(True, is_batch_norm=False, has_weights=True)
    assert not learns_in_phase2(True, is_batch_norm=True, has_weights=True)
    assert learns_in_phase2(True, is_batch_norm=True, has_weights=True, freeze_batch_norm=False)  # random weights
    assert not learns_in_phase2(True, is_batch_norm=False, has_weights=False)
    assert not learns_in_phase2(False, is_batch_norm=False, has_weights=True)


ROWS = [
    {"index": 0, "name": "Conv1", "is_batch_norm": False, "params": 432},
    {"index": 1, "name": "bn_Conv1", "is_batch_norm": True, "params": 64},
    {"index": 2, "name": "relu", "is_batch_norm": False, "params": 0},
    {"index": 3, "name": "block_1_expand", "is_batch_norm": False, "params": 1000},
]


def test_the_layer_table_says_which_layers_learn_and_how_many_weights():
    """What the Model page shows: BatchNormalization and weightless layers never learn, whatever the plan."""
    from core.network.freezing import learning_layers, phase2_weights

    learns = learning_layers(ROWS, [True, True, True, True])
    assert learns == [True, False, False, True]
    assert phase2_weights(ROWS, learns, UnfreezePlan.parse("all")) == 1432
    assert phase2_weights(ROWS, learns, UnfreezePlan.parse("none")) == 0


def test_ticking_layers_makes_a_plan_of_those_layers_without_batch_normalization():
    from core.network.freezing import plan_of_ticks

    plan = plan_of_ticks(ROWS, [True, True, False, True])
    assert plan == UnfreezePlan(UnfreezeKind.LAYERS, layers=(0, 3)) and str(plan) == "layers:0,3"
    assert plan_of_ticks(ROWS, [False, True, False, False]).trains_nothing  # only a BatchNormalization ticked
