"""Run directories, worker processes and the one-at-a-time queue."""

import json
import os
import signal
import subprocess
import sys

import pytest

from core.base.processes import process_alive
from core.runs.directory import RunDirectory, list_runs
from core.runs.queue import start_run
from core.runs.status import RunState
from tests.conftest import tiny_config, wait_until


def test_create_writes_config_and_queued_status(tmp_path):
    run = RunDirectory.create(tmp_path, tiny_config("demo", name="../../etc/passwd"))
    assert run.path.parent == tmp_path and ".." not in run.id and "/" not in run.id
    assert run.config() == tiny_config("demo", name="../../etc/passwd")
    assert run.status().state is RunState.QUEUED


def test_same_id_twice_gets_a_new_directory(tmp_path):
    a = RunDirectory.create(tmp_path, tiny_config("demo"), run_id="same")
    b = RunDirectory.create(tmp_path, tiny_config("demo"), run_id="same")
    assert a.path != b.path and {a.id, b.id} == {"same", "same-2"}


def test_events_are_read_incrementally_and_half_lines_wait(tmp_path):
    run = RunDirectory.create(tmp_path, tiny_config("demo"))
    with open(run.events_path, "a") as handle:
        handle.write(json.dumps({"type": "batch", "n": 1}) + "\n" + '{"type": "ba')
    events, offset = run.read_events()
    assert events == [{"type": "batch", "n": 1}]
    with open(run.events_path, "a") as handle:
        handle.write('tch", "n": 2}\n')
    events, _ = run.read_events(offset)
    assert events == [{"type": "batch", "n": 2}]


@pytest.mark.heavy
def test_a_dead_worker_shows_as_interrupted(tmp_path):
    run = RunDirectory.create(tmp_path, tiny_config("demo"))
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    import psutil

    run.update_status(state=RunState.RUNNING, pid=process.pid, pid_started=psutil.Process(process.pid).create_time())
    assert run.status().state is RunState.RUNNING
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not process_alive(process.pid, None)
    status = run.status()
    assert status.state is RunState.INTERRUPTED and "ended unexpectedly" in status.message
    assert run.raw_status().state is RunState.RUNNING  # the file is not rewritten by a reader


@pytest.mark.heavy
def test_workers_train_one_at_a_time_in_order(make_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = str(make_dataset({"red": 6, "green": 6}))
    root = tmp_path / "runs"
    first = start_run(tiny_config(data, head_epochs=2, finetune_epochs=0), root)
    second = start_run(tiny_config(data, head_epochs=1, finetune_epochs=0), root)
    wait_until(lambda: first.status().state in (RunState.RUNNING, RunState.SUCCEEDED), what="the first run to start")
    if first.status().state is RunState.RUNNING:
        assert second.status().state is RunState.QUEUED
        wait_until(lambda: "position 1" in second.status().message, 30, "the second run's queue position")
    wait_until(
        lambda: second.status().state is RunState.SUCCEEDED,
        300,
        lambda: f"the second run: {second.log_path.read_text()}",
    )
    assert first.status().state is RunState.SUCCEEDED
    assert first.status().finished <= second.status().started
    assert [r.id for r in list_runs(root)] == [second.id, first.id]


@pytest.mark.heavy
def test_stop_while_queued(make_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "runs"
    blocker = root / ".train-slot-0.lock"
    root.mkdir()
    import fcntl

    handle = open(blocker, "w")
    fcntl.flock(handle, fcntl.LOCK_EX)  # someone else is training
    try:
        run = start_run(tiny_config(str(make_dataset({"red": 4, "green": 4}))), root)
        wait_until(lambda: "Waiting in the queue" in run.status().message, 60, "the run to wait in the queue")
        run.request_stop()
        wait_until(lambda: run.status().state is RunState.STOPPED, 30, "the queued run to stop")
    finally:
        handle.close()
    assert "queue" in run.status().message


@pytest.mark.heavy
def test_a_killed_worker_is_interrupted_and_resumes_from_its_last_epoch(make_dataset, tmp_path, monkeypatch):
    """SIGKILL mid-training: the run directory tells the truth, keeps its work, and carries on."""
    from core.runs.queue import resume_run

    monkeypatch.chdir(tmp_path)
    data = str(make_dataset({"red": 16, "green": 16}))
    run = start_run(tiny_config(data, head_epochs=40, finetune_epochs=3, batch_size=4), tmp_path / "runs")
    wait_until(lambda: len(run.history()) >= 2, 240, lambda: f"two epochs: {run.log_path.read_text()}")
    os.kill(run.raw_status().pid, signal.SIGKILL)
    wait_until(lambda: run.status().state is RunState.INTERRUPTED, 30, "the killed run to read as interrupted")
    done = run.raw_status().resume_point.epochs_done
    assert run.can_resume() and run.best_checkpoint_path.exists()
    assert done >= 1
    kept = run.history()[:done]  # an epoch that ended during the kill, before its checkpoint, is redone

    resume_run(run)
    wait_until(
        lambda: run.status().state is RunState.SUCCEEDED, 300, lambda: f"the resumed run: {run.log_path.read_text()}"
    )
    epochs = [(row["phase"], row["epoch"]) for row in run.history()]
    assert epochs[: len(kept)] == [(row["phase"], row["epoch"]) for row in kept]
    numbers = [epoch for _, epoch in epochs]
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # no epoch lost or repeated
    assert epochs[-1][0] == 2 and run.evaluation() is not None
    assert "Resuming after epoch" in run.log_path.read_text()


def test_only_interrupted_runs_resume(tmp_path):
    from core.runs.queue import resume_run

    run = RunDirectory.create(tmp_path, tiny_config("demo"))
    run.update_status(state=RunState.SUCCEEDED)
    with pytest.raises(ValueError, match="cannot be resumed"):
        resume_run(run)


def test_the_splits_are_read_as_the_csv_they_were_written_as(tmp_path):
    from core.data.datasets import DatasetReport, ImageItem
    from core.data.splits import make_splits
    from core.network.config import RunConfig

    photos = [ImageItem(str(tmp_path / f"a, b {k}.png"), "red", "", "PNG", 8, 8) for k in range(8)]
    report = DatasetReport(str(tmp_path), "classes", ["red"], photos)
    run = RunDirectory.create(tmp_path / "runs", RunConfig(), run_id="commas")
    run.splits_path.write_text(make_splits(report, 0.25, 0.25, 0).to_csv())
    rows = run.splits()
    assert sorted(path for _, _, path in rows) == sorted(p.path for p in photos)  # a comma stays in its path
    assert {label for _, label, _ in rows} == {"red"} and {split for split, _, _ in rows} <= {"train", "val", "test"}
