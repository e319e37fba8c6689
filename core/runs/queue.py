"""The queue: starting a run's worker process (or resuming one), and the machine-wide right to train, taken in\nthe order runs were created."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO

from core.base.processes import ProcessRecord, cluster_address, process_alive, spawn_core
from core.network.config import RunConfig
from core.runs.directory import RunDirectory, list_runs, runs_root, unique_title
from core.runs.status import RunState, Stage


def start_run(
    config: RunConfig, root: str | os.PathLike | None = None, title: str = "", estimate: dict | None = None
) -> RunDirectory:
    """Create a run and start its worker process; returns at once (the worker may wait in the queue).

    `estimate`: seconds each stage is expected to take (`core.training.estimate`), for an honest time left.
    """
    root = Path(root) if root else runs_root()
    run = RunDirectory.create(root, config.validate(), title=unique_title(root, title) if title else "")
    if estimate:
        run.update_status(estimate=estimate)
    spawn_worker(run)
    return run


def resume_run(run: RunDirectory) -> RunDirectory:
    """Continue an interrupted run from its last finished epoch, in a new worker (queued like any run).

    Raises:
        ValueError: the run is not interrupted, or no epoch finished before it stopped.
    """
    if not run.can_resume():
        raise ValueError(f"Run {run.id} cannot be resumed: only an interrupted run with a finished epoch can.")
    run.stop_path.unlink(missing_ok=True)
    run.update_status(
        state=RunState.QUEUED,
        stage=Stage.WAITING,
        resume_requested=True,
        created=time.time(),
        message="Waiting to resume",
    )
    spawn_worker(run)
    return run


def spawn_worker(run: RunDirectory) -> ProcessRecord:
    """Start the run's worker process (`python -m core worker`), its output appended to `log.txt`; with
    STUDIO_RAY_ADDRESS set, the process that sends it to the Ray cluster instead (`core.training.cluster`)."""
    process = spawn_core(["cluster" if cluster_address() else "worker", str(run.path)], log_path=run.log_path)
    run.update_status(pid=process.pid, pid_started=process.started)
    return process


class TrainingSlot:
    """The machine-wide right to train: one run at a time (`STUDIO_PARALLEL_RUNS` to allow more).

    A kernel file lock, so a killed worker frees it at once; waiting runs take it in
    the order they were created.
    """

    def __init__(self, root: Path, run: RunDirectory):
        self.root = root
        self.run = run
        self.handle: IO[str] | None = None
        self.slots = max(1, int(os.environ.get("STUDIO_PARALLEL_RUNS", "1")))

    def try_acquire(self) -> bool:
        ahead = self.runs_ahead()
        if len(ahead) >= self.slots:
            return False
        for slot in range(self.slots):
            handle = open(self.root / f".train-slot-{slot}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                continue
            self.handle = handle
            return True
        return False

    def runs_ahead(self) -> list[RunDirectory]:
        """Queued runs with live workers that were created before this one."""
        mine = self.run.raw_status().created or 0
        ahead = []
        for other in list_runs(self.root):
            if other.path == self.run.path:
                continue
            status = other.raw_status()
            if (
                status.state is RunState.QUEUED
                and (status.created or 0) < mine
                and process_alive(status.pid, status.pid_started)
            ):
                ahead.append(other)
        return ahead

    def running_now(self) -> list[RunDirectory]:
        return [r for r in list_runs(self.root) if r.status().state is RunState.RUNNING]

    def release(self) -> None:
        if self.handle:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def wait_for_slot(run: RunDirectory, poll_seconds: float = 0.5) -> TrainingSlot | None:
    """Block until this run may train; None if a stop was requested while it waited."""
    slot = TrainingSlot(run.path.parent, run)
    last_message = None
    while not slot.try_acquire():
        if run.stop_requested():
            return None
        busy = [f"“{r.title()}”" for r in slot.running_now()]
        position = len(slot.runs_ahead()) + 1
        message = (
            f"Waiting in the queue (position {position}): {busy[0] if busy else 'another run'} is training. "
            "It starts by itself when that one ends."
        )
        if message != last_message:
            run.update_status(state=RunState.QUEUED, message=message, queue_position=position)
            last_message = message
        time.sleep(poll_seconds)
    return slot
