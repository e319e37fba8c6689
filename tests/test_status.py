"""The typed run status: states and stages in words, JSON round trip, and statuses written by the previous version."""

import json

from core.runs.directory import RunDirectory
from core.runs.status import ResumePoint, RunState, RunStatus, Stage
from tests.conftest import tiny_config


def test_a_status_round_trips_through_its_file(tmp_path):
    run = RunDirectory.create(tmp_path, tiny_config("demo"))
    run.update_status(state=RunState.RUNNING, stage=Stage.FINETUNE, resume_point=ResumePoint(2, 7, 5), epoch=7)
    status = run.raw_status()
    assert status.state is RunState.RUNNING and status.stage is Stage.FINETUNE and status.phase == 2
    assert status.resume_point == ResumePoint(2, 7, 5) and status.epoch == 7 and status.updated
    assert json.loads(run.status_path.read_text())["stage"] == "finetune"


def test_unknown_names_cannot_be_written_and_unknown_fields_are_skipped_when_read(tmp_path):
    run = RunDirectory.create(tmp_path, tiny_config("demo"))
    try:
        run.update_status(colour="red")
    except TypeError:
        pass
    else:
        raise AssertionError("a field the status does not have must not be written")
    assert RunStatus.from_dict({"state": "succeeded", "written_by_a_newer_version": 1}).state is RunState.SUCCEEDED


def test_a_status_of_the_previous_version_reads_as_stages():
    assert RunStatus.from_dict({"state": "running", "phase": 2}).stage is Stage.FINETUNE
    assert RunStatus.from_dict({"state": "running", "phase": "evaluating"}).stage is Stage.EVALUATING
    assert RunStatus.from_dict({"state": "running", "phase": 0, "prepared": 3}).stage is Stage.PREPARING
    old = RunStatus.from_dict(
        {"state": "succeeded", "phase": "evaluating", "resume_point": {"phase": 1, "epochs_done": 2, "phase_start": 0}}
    )
    assert old.stage is Stage.DONE and old.resume_point == ResumePoint(1, 2, 0)


def test_states_say_what_they_mean():
    assert [s.label for s in RunState] == [
        "Waiting in the queue",
        "Training",
        "Finished",
        "Stopped",
        "Failed",
        "Interrupted",
    ]
    assert [s for s in RunState if s.active] == [RunState.QUEUED, RunState.RUNNING]
    assert Stage.of_phase(1) is Stage.HEAD and Stage.EVALUATING.phase is None
