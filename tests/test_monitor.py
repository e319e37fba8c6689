"""What a person watching a run reads: the progress line, the fraction done and the time left, from events and status."""

import pytest

from core.runs.status import RunState, RunStatus, Stage
from core.training.monitor import RunProgress, format_seconds


def running(stage: Stage, **fields) -> RunStatus:
    return RunStatus(state=RunState.RUNNING, stage=stage, epochs_total=4, phase_epochs=4, **fields)


def test_progress_line_is_plain_words_in_every_stage():
    progress = RunProgress()
    assert progress.describe() == "Preparing the photos"
    progress.apply_status(running(Stage.FEATURES))
    assert "once, then reused every epoch" in progress.describe()
    progress.apply_status(running(Stage.HEAD))
    assert progress.describe().startswith("Starting phase 1")
    progress.update(
        [
            {"type": "phase_start", "steps": 6, "epoch": 0},
            {"type": "epoch_start", "epoch": 1},
            {"type": "batch", "epoch": 1, "batch": 3, "steps": 6, "images_per_second": 40.0, "loss": 1.0},
        ]
    )
    progress.update([{"type": "epoch", "epoch": 1, "phase": 1, "seconds": 10.0, "loss": 0.5}])
    progress.apply_status(running(Stage.HEAD))
    line = progress.describe()
    assert line == "Phase 1 · epoch 1 of 4 · batch 6 of 6 · about 30 s left in this phase", line
    assert " ·  ·" not in line and "-" not in line
    progress.apply_status(running(Stage.EVALUATING))
    assert "never seen" in progress.describe()


def test_fraction_and_time_left_follow_the_epochs_and_stop_with_the_run():
    progress = RunProgress()
    progress.update([{"type": "phase_start", "steps": 4, "epoch": 0}, {"type": "epoch_start", "epoch": 1}])
    progress.update([{"type": "batch", "epoch": 1, "batch": 2, "steps": 4}])
    progress.apply_status(running(Stage.HEAD))
    assert progress.fraction == pytest.approx(0.5 / 4) and progress.seconds_left is None  # no epoch timed yet
    progress.update([{"type": "epoch", "epoch": 1, "phase": 1, "seconds": 8.0}, {"type": "epoch_start", "epoch": 2}])
    progress.apply_status(running(Stage.HEAD))
    assert progress.fraction == pytest.approx(1 / 4) and progress.seconds_left == pytest.approx(24.0)  # 3 more of 8 s
    progress.apply_status(RunStatus(state=RunState.SUCCEEDED, stage=Stage.DONE, epochs_total=4))
    assert progress.fraction == 1.0 and progress.seconds_left is None


def test_with_an_estimate_the_time_left_covers_every_stage_and_learns_from_the_finished_ones():
    """The old line said "about 2 s left" at the start of phase 2 (phase 1's pace), then jumped to 46 s."""
    plan = {"preparing": 5.0, "features": 5.0, "head": 10.0, "finetune": 40.0, "evaluating": 2.0}
    phase1_epochs = [{"type": "epoch", "epoch": e, "phase": 1, "seconds": 0.5} for e in range(1, 11)]
    progress = RunProgress()
    progress.update(phase1_epochs)
    # Phase 2 has just begun; the finished stages took twice their estimates.
    status = running(
        Stage.FINETUNE,
        estimate=plan,
        stage_started=1000.0,
        epoch=10,
        epochs_before_phase=10,
        stage_seconds={"preparing": 10.0, "features": 10.0, "head": 20.0},
    )
    progress.apply_status(status, now=1000.0)
    assert progress.seconds_left == pytest.approx(40.0 * 2 + 2.0 * 2) and progress.whole_run
    assert progress.describe().endswith("about 1 min 24 s left") or "about 1 min 24 s left" in progress.describe()
    progress.update([{"type": "epoch", "epoch": 11, "phase": 2, "seconds": 3.0}])
    progress.apply_status(status.updated_with(epoch=11), now=1003.0)  # now phase 2's own pace: 3 of 4 epochs left
    assert progress.seconds_left == pytest.approx(3 * 3.0 + 2.0 * 2)


def test_the_memorising_warning_says_what_it_means_for_the_kept_model():
    from core.training.monitor import memorising

    rising = [
        {"epoch": e, "loss": 1.0 / e, "val_loss": 0.5 + 0.01 * max(e - 3, 0), "val_accuracy": 0.9} for e in range(1, 8)
    ]
    assert memorising(rising[:4], keeps_best=False, running=True) is None  # too early to tell
    said = memorising(rising, keeps_best=False, running=True)
    assert "started to memorise" in said and "pressing Stop now keeps the most accurate epoch" in said
    assert "most accurate epoch is what will be kept" in memorising(rising, keeps_best=True, running=True)
    steady = [{**e, "val_loss": 0.5} for e in rising]
    assert memorising(steady, keeps_best=False, running=True) is None
    apart = [{**e, "accuracy": 0.98, "val_accuracy": 0.80} for e in steady]  # the demo run from the issue
    assert "right on 98% of its training photos but only 80% of the validation photos" in memorising(
        apart, keeps_best=False, running=False
    )
    assert memorising([{**e, "accuracy": 0.93, "val_accuracy": 0.85} for e in steady], False, False) is None


def test_phase_starts_are_remembered_for_the_charts():
    progress = RunProgress()
    progress.update([{"type": "phase_start", "steps": 3, "epoch": 0}, {"type": "phase_start", "steps": 3, "epoch": 5}])
    assert progress.phase_starts == [0, 5] and not progress.has_curves


@pytest.mark.parametrize("seconds, text", [(None, "-"), (4.4, "4 s"), (61, "1 min 01 s"), (3720, "1 h 02 min")])
def test_durations_in_words(seconds, text):
    assert format_seconds(seconds) == text


def test_a_stage_that_overruns_its_estimate_never_says_done_and_slows_the_rest_too():
    """The issue's demo: "a few seconds" (a stage past its plan), then "1 min 08 s" when the next began."""
    plan = {"preparing": 5.0, "features": 5.0, "head": 10.0, "finetune": 40.0, "evaluating": 2.0}
    progress = RunProgress()
    progress.apply_status(running(Stage.PREPARING, estimate=plan, stage_started=1000.0), now=1030.0)
    assert progress.seconds_left == pytest.approx(0.15 * 30 + (5 + 10 + 40 + 2) * 3.0)  # slowed by this stage's pace


def test_the_time_left_counts_down_through_noise_and_says_why_when_it_goes_up():
    plan = {"preparing": 5.0, "features": 5.0, "head": 100.0, "finetune": 0.0, "evaluating": 0.0}
    done = {"preparing": 5.0, "features": 5.0}
    progress = RunProgress()
    status = running(Stage.HEAD, estimate=plan, stage_started=1000.0, stage_seconds=done)
    progress.apply_status(status, now=1000.0)
    assert progress.seconds_left == pytest.approx(100.0) and not progress.revised
    plan_noisy = {**plan, "head": 115.0}  # a step a little slower than measured: still counts down
    progress.apply_status(running(Stage.HEAD, estimate=plan_noisy, stage_started=1000.0, stage_seconds=done), 1010.0)
    assert progress.seconds_left == pytest.approx(90.0) and "revised" not in progress.describe()
    plan_slow = {**plan, "head": 250.0}  # clearly slower: the rise is shown, with its reason
    progress.apply_status(running(Stage.HEAD, estimate=plan_slow, stage_started=1000.0, stage_seconds=done), 1020.0)
    assert progress.seconds_left == pytest.approx(230.0)
    assert "(revised up: this run is going slower than this machine measured before it started)" in progress.describe()
