"""Run directories: the single source of truth for a training run.

`runs/<id>/` holds `config.json`, `status.json`, `events.jsonl`, `history.csv`,
`log.txt`, `checkpoints/best.keras`, `model.keras`, `evaluation.json`,
`dataset.json` and `splits.csv` (see docs/run-directory.md). Pages only read these
files, so a refresh, a closed tab or a restarted server loses nothing. Runs train in
worker processes, one at a time per machine by default, the others waiting in order.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from core.config import RunConfig

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("succeeded", "stopped", "failed", "interrupted")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def runs_root() -> Path:
    """Where runs live: `STUDIO_RUNS`, default `./runs`."""
    return Path(os.environ.get("STUDIO_RUNS", "runs")).absolute()


def safe_name(text: str, limit: int = 40) -> str:
    """A name safe to use as one path component: letters, digits, dot, dash, underscore."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")
    return cleaned[:limit] or "run"


def process_alive(pid: int | None, started: float | None) -> bool:
    """True if `pid` is still the process that was recorded (not a zombie, not a reused pid)."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class RunDirectory:
    """One run's files, with atomic writes so a reader never sees half a file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    events_path = property(lambda self: self.path / "events.jsonl")
    history_path = property(lambda self: self.path / "history.csv")
    log_path = property(lambda self: self.path / "log.txt")
    best_checkpoint_path = property(lambda self: self.path / "checkpoints" / "best.keras")
    last_checkpoint_path = property(lambda self: self.path / "checkpoints" / "last.keras")
    model_path = property(lambda self: self.path / "model.keras")
    evaluation_path = property(lambda self: self.path / "evaluation.json")
    dataset_path = property(lambda self: self.path / "dataset.json")
    splits_path = property(lambda self: self.path / "splits.csv")
    stop_path = property(lambda self: self.path / "stop")

    @classmethod
    def create(cls, root: str | os.PathLike, config: RunConfig, run_id: str | None = None) -> RunDirectory:
        """Make a new run directory with its config and a `queued` status."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        if run_id is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            label = safe_name(config.name or f"{config.backbone}-{Path(config.data).stem or config.data}")
            run_id = f"{stamp}-{label}"
        run_id = safe_name(run_id, limit=80)
        path = root / run_id
        suffix = 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                suffix += 1
                path = root / f"{run_id}-{suffix}"
        run = cls(path)
        run.write_config(config)
        run.write_status(state="queued", created=time.time(), message="Waiting to start")
        return run

    def write_config(self, config: RunConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config_path, config.to_json())

    def config(self) -> RunConfig:
        return RunConfig.from_json(self.config_path.read_text())

    def image_size(self) -> int:
        """The size the run's images are resized to: the config's, or what `auto` chose (in the status)."""
        return int(self.raw_status().get("image_size") or self.config().image_size)

    def raw_status(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}

    def write_status(self, **fields: Any) -> dict[str, Any]:
        status = self.raw_status()
        status.update(fields)
        status["updated"] = time.time()
        # Progress (epoch, message) is rewritten every epoch: only a change of state is worth an fsync.
        write_atomic(self.status_path, json.dumps(status, indent=2, default=str), durable="state" in fields)
        return status

    def status(self) -> dict[str, Any]:
        """The status, with a run whose worker died shown as `interrupted` rather than forever running."""
        status = self.raw_status()
        if status.get("state") in ACTIVE_STATES and status.get("pid"):
            if not process_alive(status.get("pid"), status.get("pid_started")):
                status = dict(status)
                status["state"] = "interrupted"
                status["message"] = (
                    "The training process ended unexpectedly (the machine or server may have restarted). "
                    "The history and the best checkpoint up to that point are kept"
                    + (
                        ", and it can resume from its last finished epoch."
                        if self.last_checkpoint_path.exists()
                        else "."
                    )
                )
        return status

    def can_resume(self) -> bool:
        """An interrupted run with at least one finished epoch can continue from its last checkpoint."""
        return self.status().get("state") == "interrupted" and self.last_checkpoint_path.exists()

    def request_stop(self) -> None:
        self.stop_path.write_text(str(time.time()))

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def read_events(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events written since byte `offset`, and the offset to pass next time."""
        try:
            with open(self.events_path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except OSError:
            return [], offset
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        events = []
        for line in data[:end].splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events, offset + end

    def history(self) -> list[dict[str, Any]]:
        try:
            with open(self.history_path, newline="") as handle:
                return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]
        except OSError:
            return []

    def evaluation(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.evaluation_path.read_text())
        except (OSError, ValueError):
            return None

    def dataset(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.dataset_path.read_text())
        except (OSError, ValueError):
            return None


def write_atomic(path: Path, text: str, durable: bool = True) -> None:
    """Write to a temporary file and rename it over `path`: readers see the old or the new file.

    `durable` also forces the bytes to disk first (fsync), so even a power cut leaves a whole file.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _number(value: str) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def list_runs(root: str | os.PathLike | None = None) -> list[RunDirectory]:
    """Every run under `root`, newest first."""
    root = Path(root) if root else runs_root()
    if not root.is_dir():
        return []
    runs = [RunDirectory(p) for p in root.iterdir() if (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.raw_status().get("created", 0), reverse=True)


def start_run(config: RunConfig, root: str | os.PathLike | None = None) -> RunDirectory:
    """Create a run and start its worker process; returns at once (the worker may wait in the queue)."""
    run = RunDirectory.create(Path(root) if root else runs_root(), config.validate())
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
    run.write_status(state="queued", resume_requested=True, created=time.time(), message="Waiting to resume")
    spawn_worker(run)
    return run


def spawn_worker(run: RunDirectory) -> subprocess.Popen:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    log = open(run.log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "worker", str(run.path)],
        cwd=str(PROJECT_ROOT),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a restarted server does not take the run down with it
    )
    log.close()
    run.write_status(pid=process.pid, pid_started=psutil.Process(process.pid).create_time())
    # Reap the child when it ends so it never lingers as a zombie under the server.
    threading.Thread(target=process.wait, daemon=True).start()
    return process


class TrainingSlot:
    """The machine-wide right to train: one run at a time (`STUDIO_PARALLEL_RUNS` to allow more).

    A kernel file lock, so a killed worker frees it at once; waiting runs take it in
    the order they were created.
    """

    def __init__(self, root: Path, run: RunDirectory):
        self.root = root
        self.run = run
        self.handle = None
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
        mine = self.run.raw_status().get("created", 0)
        ahead = []
        for other in list_runs(self.root):
            if other.path == self.run.path:
                continue
            status = other.raw_status()
            if (
                status.get("state") == "queued"
                and status.get("created", 0) < mine
                and process_alive(status.get("pid"), status.get("pid_started"))
            ):
                ahead.append(other)
        return ahead

    def running_now(self) -> list[RunDirectory]:
        return [r for r in list_runs(self.root) if r.status().get("state") == "running"]

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
        busy = [r.id for r in slot.running_now()]
        position = len(slot.runs_ahead()) + 1
        message = (
            f"Waiting in the queue (position {position}): {busy[0] if busy else 'another run'} is training. "
            "It starts by itself when that one ends."
        )
        if message != last_message:
            run.write_status(state="queued", message=message, queue_position=position)
            last_message = message
        time.sleep(poll_seconds)
    return slot
