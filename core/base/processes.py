"""Starting detached processes and telling later whether they are still alive.

Training workers and TensorFlow tasks run in their own process sessions, so a
restarted dashboard does not take them down. Each is recorded by pid *and* start
time: a pid reused by another program after a reboot never passes for the worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Where a run's process trains: here, or on the Ray cluster at this address (`core.training.cluster`).
RAY_ADDRESS_ENV = "STUDIO_RAY_ADDRESS"
NO_RAY = (
    f"Runs go to a Ray cluster ({RAY_ADDRESS_ENV} is set), but Ray is not installed on this server.",
    f"An administrator installs it (pip install -r requirements-cluster.txt) or unsets {RAY_ADDRESS_ENV} to train here.",
)


@dataclass(frozen=True)
class ProcessRecord:
    """A process as it was started: enough to recognise it again."""

    pid: int
    started: float | None

    def alive(self) -> bool:
        return process_alive(self.pid, self.started)

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        try:
            return cls(pid, psutil.Process(pid).create_time())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return cls(pid, None)


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


def spawn_core(arguments: list[str], log_path: Path | None = None) -> ProcessRecord:
    """Start `python -m core ARGUMENTS` detached from this process; return at once.

    Its output goes to `log_path` (appended) or nowhere. The child is reaped by a
    background thread when it ends, so it never lingers as a zombie under the server.
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    output: Any = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "core", *arguments],
            cwd=str(PROJECT_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a restarted server does not take the process down with it
        )
    finally:
        if log_path:
            output.close()
    threading.Thread(target=process.wait, daemon=True).start()
    return ProcessRecord.of(process.pid)


def cluster_address() -> str | None:
    """The Ray cluster runs are sent to, or None to train on this machine."""
    return os.environ.get(RAY_ADDRESS_ENV, "").strip() or None


def ray_missing() -> bool:
    """Whether runs should go to a cluster but Ray cannot be imported here (found without importing it)."""
    import importlib.util

    return bool(cluster_address()) and importlib.util.find_spec("ray") is None
