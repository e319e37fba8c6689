"""A run's training from its directory to its evaluation, as fastai's `fine_tune` reads: prepare, build or
resume, run the phases, keep a model, evaluate it. `python -m core worker RUN` is this module's `run_worker`."""

from __future__ import annotations

import os
import time

from core.runs.directory import RunDirectory
from core.runs.status import RunState, Stage
from core.training.build import build_or_resume
from core.training.failures import Echo, run_guarded
from core.training.keep import evaluate, keep_model
from core.training.phases import run_phases
from core.training.prepare import prepare
from core.training.session import start_session

WORKER_NICENESS = 10


def train_run(run: RunDirectory, echo: Echo = print, record_process: bool = True) -> RunState:
    """Train `run` to the end and return its final state (succeeded, stopped or failed).

    Never raises for a training problem: the status says what went wrong and what to do,
    and the log has the traceback. `record_process`: False where another process stands for the
    run (a Ray task's supervisor, `core.training.cluster`).
    """
    return run_guarded(run, _train, echo, record_process)


def _train(run: RunDirectory, echo: Echo) -> RunState:
    """place → prepare → build or resume → the phases → keep → evaluate, all within the devices' strategy."""
    from core.network.distribute import place

    config = run.config().validate()
    placement = place(config.devices, config.precision)  # before TensorFlow starts: it picks the devices
    with placement.scope():
        prepared = prepare(run, config, echo)
        classifier = build_or_resume(run, prepared, echo)
        session = start_session(run, prepared, classifier, echo, placement)
        outcome = run_phases(session)
        model, kept = keep_model(session, outcome)
        if model is None:
            message = "Stopped before the first epoch finished: nothing was saved."
            run.update_status(state=RunState.STOPPED, stage=Stage.DONE, finished=time.time(), message=message)
            return RunState.STOPPED
        return evaluate(session, model, kept, outcome)


def run_worker(run_path: str | os.PathLike) -> int:
    """Entry point of a worker process: wait for a training slot, then train."""
    from core.runs.queue import wait_for_slot

    run = RunDirectory(run_path)
    # Training takes every core it can; a lower priority lets the dashboard that shares
    # the machine answer clicks at once while a run trains.
    os.nice(WORKER_NICENESS)
    slot = wait_for_slot(run)
    if slot is None:
        run.update_status(
            state=RunState.STOPPED,
            stage=Stage.DONE,
            finished=time.time(),
            message="Stopped while waiting in the queue.",
        )
        return 0
    try:
        state = train_run(run, echo=lambda line: print(line, flush=True))
    finally:
        slot.release()
    return 0 if state in (RunState.SUCCEEDED, RunState.STOPPED) else 1
