"""A run kept as one file (a project), and opened again on another server.

The file is a zip of the run's settings, status, name and notes, history, evaluation, data
summary and model, with `studio-run.json` listing each file's SHA-256. The photos stay where
they are (a project is for results, not a copy of the data). Opening one is careful: only the
listed names are read, each within a size limit, each checked against its hash; the config and
status must read as a finished run; nothing is written until all of it passed, then it appears
at once under a new id if its own is taken.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import time
import zipfile
from pathlib import Path

from core.config import RunConfig
from core.errors import InputError
from core.files import safe_name, write_atomic
from core.runs import RunDirectory, list_runs, unique_title
from core.status import RunState, RunStatus

MANIFEST = "studio-run.json"
FORMAT = 1
# What a project holds, with the most each file may be once unpacked.
MEGABYTE = 1024 * 1024
CONTENTS = {
    "config.json": MEGABYTE,
    "status.json": 4 * MEGABYTE,
    "about.json": MEGABYTE,
    "history.csv": 16 * MEGABYTE,
    "events.jsonl": 256 * MEGABYTE,
    "evaluation.json": 64 * MEGABYTE,
    "dataset.json": 64 * MEGABYTE,
    "calibration.json": 64 * MEGABYTE,
    "model.keras": 4096 * MEGABYTE,
}
REQUIRED = ("config.json", "status.json", "evaluation.json", "model.keras")
FINISHED = (RunState.SUCCEEDED, RunState.STOPPED)


class ProjectRefused(InputError):
    """A file that cannot be opened as a run; the message says why."""


def can_pack(run: RunDirectory) -> str | None:
    """Why `run` cannot be kept as a project yet, or None when it can."""
    if run.status().state not in FINISHED:
        return "Only a finished or stopped run can be kept as a file (this one has no final results yet)."
    missing = [name for name in REQUIRED if not (run.path / name).is_file()]
    if missing:
        return f"This run has no {' or '.join(missing)}, so it cannot be kept as a file."
    return None


def project_name(run: RunDirectory) -> str:
    """The file name a download of `run` gets: its readable name, made safe."""
    return f"{safe_name(run.title(), limit=80)}.studio.zip"


def pack_run(run: RunDirectory) -> bytes:
    """The run as one zip (model stored as it is: a `.keras` file is already compressed).

    Raises:
        ProjectRefused: the run has not finished.
    """
    reason = can_pack(run)
    if reason:
        raise ProjectRefused(reason)
    buffer = io.BytesIO()
    hashes = {}
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in CONTENTS:
            path = run.path / name
            if not path.is_file():
                continue
            content = path.read_bytes()
            if name == "status.json":
                content = _portable_status(content)
            hashes[name] = hashlib.sha256(content).hexdigest()
            compression = zipfile.ZIP_STORED if name.endswith(".keras") else zipfile.ZIP_DEFLATED
            archive.writestr(name, content, compress_type=compression)
        manifest = {
            "format": FORMAT,
            "run": run.id,
            "title": run.title(),
            "packed": time.time(),
            "server": socket.gethostname(),
            "files": hashes,
        }
        archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
    return buffer.getvalue()


def _portable_status(content: bytes) -> bytes:
    """The status without what only means something on this machine (its process ids)."""
    status = json.loads(content)
    for key in ("pid", "pid_started", "queue_position"):
        status.pop(key, None)
    return json.dumps(status, indent=2).encode()


def unpack_run(source: str | os.PathLike | bytes, root: str | os.PathLike) -> RunDirectory:
    """Open a project file as a run under `root`; its own id when free, else with a number added.

    Raises:
        ProjectRefused: not a project, damaged, too large, or not a finished run; nothing is written.
    """
    files, manifest = _read_project(source)
    try:
        RunConfig.from_json(files["config.json"].decode())  # read to check it; the file is kept as written
        status = RunStatus.from_dict(json.loads(files["status.json"]))
        evaluation = json.loads(files["evaluation.json"])
        if not isinstance(evaluation, dict) or not isinstance(evaluation.get("class_names"), list):
            raise ValueError("evaluation.json has no classes")
    except (ValueError, TypeError, KeyError) as error:
        raise ProjectRefused(f"This project's settings or results cannot be read ({error}).") from None
    if status.state not in FINISHED:
        raise ProjectRefused("This project holds a run that had not finished; only finished runs can be opened.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".opening-{os.getpid()}-{time.time_ns()}"
    staging.mkdir()
    try:
        for name, content in files.items():
            write_atomic(staging / name, content, durable=name == "model.keras")
        imported = {key: manifest.get(key) for key in ("run", "title", "packed", "server")}
        write_atomic(staging / "imported.json", json.dumps({**imported, "opened": time.time()}, indent=1))
        run = RunDirectory(_move_into_place(staging, root, safe_name(str(manifest.get("run") or "project"), 80)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    title = run.title()
    taken = {other.title() for other in list_runs(root) if other.id != run.id}
    if title in taken:  # the same run opened twice, or kept and opened on the server it came from
        run.set_about(name=unique_title(root, f"{title} (opened from a file)"))
    return run


def _read_project(source) -> tuple[dict[str, bytes], dict]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise ProjectRefused(
            "This file is not a Fine-Tune Studio project (a .studio.zip from “Keep this run as a file”)."
        ) from None
    with archive:
        try:
            manifest = json.loads(_member(archive, MANIFEST, MEGABYTE))
            listed = manifest["files"]
            if manifest.get("format") != FORMAT or not isinstance(listed, dict):
                raise ValueError
        except (KeyError, ValueError, TypeError):
            raise ProjectRefused(
                "This zip is not a Fine-Tune Studio project (it has no readable studio-run.json)."
            ) from None
        unknown = sorted(set(listed) - set(CONTENTS))
        if unknown:
            raise ProjectRefused(f"This project lists files a run never holds ({', '.join(unknown)[:100]}).")
        missing = [name for name in REQUIRED if name not in listed]
        if missing:
            raise ProjectRefused(f"This project has no {' or '.join(missing)}.")
        files = {}
        for name, expected in listed.items():
            content = _member(archive, name, CONTENTS[name])
            if hashlib.sha256(content).hexdigest() != expected:
                raise ProjectRefused(f"This project is damaged: {name} is not the file that was kept.")
            files[name] = content
    return files, manifest


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """One file of the zip, refused when it unpacks to more than `limit` bytes (whatever its header claims)."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ProjectRefused(f"This project is incomplete: it has no {name}.") from None
    if info.file_size > limit:
        raise ProjectRefused(f"This project's {name} is larger than a run's ever is ({info.file_size:,} bytes).")
    try:
        with archive.open(info) as handle:
            content = handle.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError):
        raise ProjectRefused(f"This project is damaged: {name} cannot be unpacked.") from None
    if len(content) > limit:
        raise ProjectRefused(f"This project's {name} is larger than a run's ever is.")
    return content


def _move_into_place(staging: Path, root: Path, run_id: str) -> Path:
    """Rename the finished folder to `run_id` (or `run_id-2`, ...): the run appears whole or not at all."""
    suffix = 1
    while True:
        target = root / (run_id if suffix == 1 else f"{run_id}-{suffix}")
        try:
            staging.rename(target)  # fails when target exists and is not empty
            return target
        except OSError:
            if not target.exists():
                raise
            suffix += 1


def imported_from(run: RunDirectory) -> dict | None:
    """Where an opened project came from (its original id, server and when it was kept), if it was one."""
    try:
        return json.loads((run.path / "imported.json").read_text())
    except (OSError, ValueError):
        return None


def delete_run(run: RunDirectory) -> None:
    """Delete a run's folder (never its photos, which live elsewhere), and every share link to it.

    Raises:
        InputError: the run is training or waiting; it has to be stopped first.
    """
    from core.sharing import forget_run

    if run.status().state.active:
        raise InputError("This run is still training or waiting. Stop it first, then delete it.")
    doomed = run.path.with_name(f".deleting-{run.id}-{time.time_ns()}")
    run.path.rename(doomed)  # gone from every list at once, even if removing the files takes a while
    forget_run(run.id)
    shutil.rmtree(doomed, ignore_errors=True)
