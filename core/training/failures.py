"""What a run's failure looks like to a person: any error during a run becomes a status in words, and
a little disk space is set aside so that a full disk can still be reported."""

from __future__ import annotations

import contextlib
import errno
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

from core.base.errors import InputError
from core.base.files import remove_temporary_files
from core.base.processes import ProcessRecord
from core.runs.directory import RunDirectory
from core.runs.status import RunState, Stage

RESERVE_NAME = ".reserve"  # set aside while training, so a full disk can still be reported
RESERVE_BYTES = 1024 * 1024
Echo = Callable[[str], None]


class RunFailed(RuntimeError):
    """A failure with a message a person can act on; `bad_input` marks the user's input as the cause."""

    def __init__(self, message: str, bad_input: bool = False):
        super().__init__(message)
        self.bad_input = bad_input


class RunStopped(Exception):
    """A stop request arrived before training began."""


def run_guarded(
    run: RunDirectory, body: Callable[[RunDirectory, Echo], RunState], echo: Echo, record_process: bool = True
) -> RunState:
    """Mark `run` running, call `body(run, echo)`, and turn any failure into a status a person can read."""
    _reserve_space(run)
    try:
        process = ProcessRecord.of(os.getpid())
        # A run trained here after a cluster trained part of it is no longer on the cluster's node.
        recorded: dict[str, Any] = (
            {"pid": process.pid, "pid_started": process.started, "node": {}} if record_process else {}
        )
        run.update_status(
            state=RunState.RUNNING,
            stage=Stage.PREPARING,
            started=time.time(),
            message="Preparing the images",
            **recorded,
        )
        return body(run, echo)
    except RunStopped:
        run.update_status(
            state=RunState.STOPPED, stage=Stage.DONE, finished=time.time(), message="Stopped before training began."
        )
        return RunState.STOPPED
    except (RunFailed, InputError) as error:
        return _fail(run, str(error), echo, bad_input=getattr(error, "bad_input", True))
    except MemoryError:
        return _fail(run, "The machine ran out of memory. Try a smaller batch size or image size.", echo)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            _release_space(run)
            best = " The best checkpoint so far is kept." if run.best_checkpoint_path.exists() else ""
            return _fail(
                run,
                f"The disk is full, so training could not write its files.{best} Free some space, then train again.",
                echo,
            )
        echo(traceback.format_exc())
        return _fail(run, f"A file could not be read or written: {error}", echo)
    except Exception as error:  # the last line of defence: the status must still tell the truth
        echo(traceback.format_exc())
        return _fail(
            run,
            f"Training failed unexpectedly ({type(error).__name__}: {str(error)[:300]}). The log has the details.",
            echo,
        )
    finally:
        (run.path / RESERVE_NAME).unlink(missing_ok=True)


def _reserve_space(run: RunDirectory) -> None:
    """Set aside a little disk space so that, if the disk fills up, the failure can still be written down."""
    try:
        with open(run.path / RESERVE_NAME, "wb") as handle:
            handle.write(b"\0" * RESERVE_BYTES)
    except OSError:
        (run.path / RESERVE_NAME).unlink(missing_ok=True)


def _release_space(run: RunDirectory) -> None:
    """Give back the reserve and half-written temporary files; finished files are left alone."""
    (run.path / RESERVE_NAME).unlink(missing_ok=True)
    for folder in (run.path, run.best_checkpoint_path.parent):
        remove_temporary_files(folder)


def _fail(run: RunDirectory, message: str, echo: Echo, bad_input: bool = False) -> RunState:
    with contextlib.suppress(OSError):  # a log that cannot be written (full disk) must not hide the status
        echo(f"FAILED: {message}")
    run.update_status(
        state=RunState.FAILED, stage=Stage.DONE, finished=time.time(), message=message, bad_input=bad_input
    )
    return RunState.FAILED
