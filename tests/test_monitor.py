"""What a person watching a run reads: the progress line, the fraction done and the time left, from events and status."""

import pytest

from core.monitor import RunProgress, format_seconds
from core.status import RunState, RunStatus, Stage


def running(stage: Stage, **fields) -> RunStatus:
    return RunStatus(state=RunState.RUNNING, stage=stage, epochs_total=4, **fields)


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
    progress.update([{"type": "epoch", "epoch": 1, "seconds": 10.0, "loss": 0.5}])
    progress.apply_status(running(Stage.HEAD))
    line = progress.describe()
    assert line == "Phase 1 · epoch 1 of 4 · batch 6 of 6 · 40 images/s · about 30 s left", line
    assert " ·  ·" not in line and "-" not in line
    progress.apply_status(running(Stage.EVALUATING))
    assert "never seen" in progress.describe()


def test_fraction_and_time_left_follow_the_epochs_and_stop_with_the_run():
    progress = RunProgress()
    progress.update([{"type": "phase_start", "steps": 4, "epoch": 0}, {"type": "epoch_start", "epoch": 1}])
    progress.update([{"type": "batch", "epoch": 1, "batch": 2, "steps": 4}])
    progress.apply_status(running(Stage.HEAD))
    assert progress.fraction == pytest.approx(0.5 / 4) and progress.seconds_left is None  # no epoch timed yet
    progress.update([{"type": "epoch", "epoch": 1, "seconds": 8.0}, {"type": "epoch_start", "epoch": 2}])
    progress.apply_status(running(Stage.HEAD))
    assert progress.fraction == pytest.approx(1 / 4) and progress.seconds_left == pytest.approx(24.0)
    progress.apply_status(RunStatus(state=RunState.SUCCEEDED, stage=Stage.DONE, epochs_total=4))
    assert progress.fraction == 1.0 and progress.seconds_left is None


def test_phase_starts_are_remembered_for_the_charts():
    progress = RunProgress()
    progress.update([{"type": "phase_start", "steps": 3, "epoch": 0}, {"type": "phase_start", "steps": 3, "epoch": 5}])
    assert progress.phase_starts == [0, 5] and not progress.has_curves


@pytest.mark.parametrize("seconds, text", [(None, "-"), (4.4, "4 s"), (61, "1 min 01 s"), (3720, "1 h 02 min")])
def test_durations_in_words(seconds, text):
    assert format_seconds(seconds) == text
