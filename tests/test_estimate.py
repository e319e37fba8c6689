"""How long a run takes: the estimate from measured speeds, and each stage's time as the run records it."""

import pytest

from core.network.config import RunConfig
from core.runs.status import RunState, RunStatus, Stage
from core.training.estimate import StageSpeeds, estimate

SPEEDS = StageSpeeds(
    startup=4.0,
    decode=0.001,
    forward=0.002,
    augment=0.001,
    head_step=0.002,
    finetune_step=0.05,
    head_trace=0.5,
    finetune_trace=4.0,
    save=0.2,
    forward_trace=1.0,
    head_epoch=0.1,
    finetune_epoch=0.15,
    finetune_forward=0.01,
)


def test_the_estimate_multiplies_each_measured_speed_by_the_work_of_its_stage():
    config = RunConfig(batch_size=32, head_epochs=30, finetune_epochs=15, feature_views=8)
    plan = estimate(config, {"train": 160, "val": 40, "test": 40}, SPEEDS, cached=True)
    assert plan["preparing"] == pytest.approx(4.0 + 2 * 0.001 * 240, abs=0.05)
    # Phase 1 reads the original photos; phase 2 makes the 7 altered versions as its first 7 epochs begin.
    assert plan["features"] == pytest.approx(0.002 * (160 + 40) + 1.0, abs=0.05)
    first_model = 2 * 0.2 + 0.002 * 40 + 1.0  # saved twice and scored on the test photos
    assert plan["head"] == pytest.approx(30 * (5 * 0.002 + 0.1) + 0.5 + 0.4 + first_model, abs=0.05)
    # Phase 2 validates through the blocks it trains, every epoch: not free, as phase 1's head is.
    versions = 7 * (0.002 + 0.001) * 160
    assert plan["finetune"] == pytest.approx(15 * (5 * 0.05 + 0.15 + 0.01 * 40) + versions + 4.0 + 0.4, abs=0.05)
    short = estimate(config, {"train": 160, "val": 40, "test": 40}, SPEEDS, cached=True, finetune_epochs=3)
    assert short["finetune"] == pytest.approx(3 * (5 * 0.05 + 0.15 + 0.01 * 40 + 0.003 * 160) + 4.4, abs=0.05)
    # Each version runs only the layers below the ones phase 2 trains, once measured.
    from dataclasses import replace

    cheaper = estimate(config, {"train": 160, "val": 40, "test": 40}, replace(SPEEDS, bottom_forward=0.001), True)
    assert cheaper["finetune"] == pytest.approx(plan["finetune"] - 7 * 0.001 * 160, abs=0.1)  # both rounded
    skipped = estimate(config, {"train": 160, "val": 40, "test": 40}, SPEEDS, cached=True, finetune_epochs=0)
    assert skipped["finetune"] == 0.0 and skipped["features"] == plan["features"] and skipped["head"] == plan["head"]
    assert skipped["evaluating"] == pytest.approx(0.4)  # the first model is kept, already scored
    head_only = estimate(config.replace(finetune_epochs=0), {"train": 160, "val": 40, "test": 40}, SPEEDS, True)
    assert head_only["finetune"] == 0.0
    # Without phase 2 the head trains on every version, made before it starts.
    assert head_only["features"] == pytest.approx(0.002 * (160 * 8 + 40) + 0.001 * 160 * 7 + 1.0, abs=0.05)
    assert head_only["head"] == pytest.approx(plan["head"] - first_model, abs=0.05)  # no first model to keep
    whole_network = estimate(config, {"train": 160, "val": 40, "test": 40}, SPEEDS, cached=False)
    assert whole_network["features"] == 0.0 and whole_network["head"] > plan["head"]  # validation on photos


def test_each_stage_change_records_how_long_the_stage_took(monkeypatch):
    clock = iter([100.0, 103.5, 110.0, 130.0])
    monkeypatch.setattr("core.runs.status.time.time", lambda: next(clock))
    status = RunStatus(state=RunState.RUNNING).updated_with(stage=Stage.PREPARING)
    status = status.updated_with(stage=Stage.FEATURES)
    status = status.updated_with(stage=Stage.HEAD, epoch=1)  # other changes ride along
    status = status.updated_with(stage=Stage.DONE)
    assert status.stage_seconds == {"preparing": 3.5, "features": 6.5, "head": 20.0}


def test_fine_tuning_can_be_skipped_only_with_enough_validation_photos():
    from core.network.freezing import UnfreezePlan
    from core.training.estimate import can_skip_finetuning

    config = RunConfig(finetune_epochs=15)
    assert config.finetune_until == "pays" and can_skip_finetuning(config, 650)  # skipped where the head suffices
    assert not can_skip_finetuning(config, 199)  # too few to tell: every epoch runs
    assert not can_skip_finetuning(config.replace(finetune_until="all"), 650)
    assert not can_skip_finetuning(config.replace(finetune_epochs=0), 650)  # no fine-tuning to skip
    assert not can_skip_finetuning(config.replace(unfreeze=UnfreezePlan.parse("none")), 650)
