"""TensorFlow work the dashboard needs, run outside the dashboard's process: the mechanism.

Importing TensorFlow or building a Keras model holds Python's GIL for seconds, which
would freeze the web server for every user. So every piece of such work (`Task`) runs
in its own process (`python -m core task ...`), its result cached on disk as JSON keyed
by its arguments, so asking again is instant and several pages or users asking at once
share one process. What each task computes is in `core.commands.task_bodies`.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.base.files import cache_home, write_atomic
from core.base.processes import process_alive, spawn_core

TASK_VERSION = 2


class Task(StrEnum):
    """Each task the dashboard and the CLI start; its body is `core.commands.task_bodies.BODIES[task]`."""

    NETWORK = "network"  # the layer table of a network as it would be built
    AUGMENT = "augment"  # photos as training would see them after augmentation
    PREDICT = "predict"  # a run's answers on photos
    SAMPLE = "sample"  # a sample photo set downloaded
    SPEEDS = "speeds"  # this machine's speed at each kind of work, for the time estimate
    CHECK_WEIGHTS = "check_weights"  # whether a weights file fits a network
    EXPORT = "export"  # one export made and checked
    EXPLAIN = "explain"  # heatmaps of photos
    REVIEW = "review"  # the photos worth a second look
    COLLECT = "collect"  # each class's learning curve: what to collect next
    SUGGEST = "suggest"  # a class suggested for each photo without a label
    LR_FIND = "lr_find"  # the learning-rate sweep


def result_path(name: Task, args: dict[str, Any]) -> Path:
    """Where the result of task `name` with `args` is (or will be) cached."""
    # A task on a run's model (a prediction, a heatmap, a review, an export) is answered again when the model
    # is replaced: the first model, kept as phase 1 ends, gives way to the final one.
    model = _model_stamp(args.get("run_dir"))
    key = hashlib.sha1(json.dumps([TASK_VERSION, name, args, model], sort_keys=True).encode()).hexdigest()[:20]
    return cache_home() / "tasks" / f"{name}-{key}.json"


def _model_stamp(run_dir) -> int | None:
    if not isinstance(run_dir, str):
        return None
    try:
        return (Path(run_dir) / "model.keras").stat().st_mtime_ns
    except OSError:
        return None


def start_task(name: Task, args: dict[str, Any]) -> Path:
    """Make sure task `name` is done or under way; return the path its result will appear at.

    A task already running for the same arguments is joined, not started twice.
    """
    path = result_path(name, args)
    if path.exists() or task_running(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    process = spawn_core(["task", name, json.dumps(args), str(path)])
    write_atomic(path.with_suffix(".pid"), json.dumps([process.pid, process.started]))
    return path


def task_running(path: Path) -> bool:
    try:
        pid, started = json.loads(path.with_suffix(".pid").read_text())
    except (OSError, ValueError, TypeError):
        return False
    return process_alive(pid, started)


def read_result(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
