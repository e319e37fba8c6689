"""A run kept as one file (a run file, `.studio.zip`: `pack` makes one, `unpack` opens one), and opened again on another server.

The file is a zip of the run's settings, status, name and notes, history, evaluation, data
summary and model, with `studio-run.json` listing each file's SHA-256. The photos stay where
they are (a run file is for results, not a copy of the data), and the paths naming them are
written relative to their photo folder, never as this server's paths (`core.data.portable`).
Opening one is careful: only the listed names are read; each file's size and compression ratio
are checked before anything is unpacked; each is streamed to disk and checked against its hash;
every path it names is made local, or dropped when it leads outside this server's photo
folders; the config and status must read as a finished run. Nothing appears until all of it
passed, then the run appears at once, under a new id if its own is taken.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import socket
import time
import zipfile
from pathlib import Path

from core.base.errors import InputError
from core.base.files import atomic_path, safe_name, write_atomic
from core.data.portable import local_json, portable_json, to_local, to_portable
from core.network.config import RunConfig
from core.runs.directory import RunDirectory, list_runs, unique_title
from core.runs.status import RunState, RunStatus

MANIFEST = "studio-run.json"
FORMAT = 1
# What a run file holds, with the most each file may be once unpacked (the largest network's model is
# about 500 MB), and the most all of it may be.
MEGABYTE = 1024 * 1024
CONTENTS = {
    "config.json": MEGABYTE,
    "status.json": 4 * MEGABYTE,
    "about.json": MEGABYTE,
    "history.csv": 16 * MEGABYTE,
    "events.jsonl": 128 * MEGABYTE,
    "evaluation.json": 32 * MEGABYTE,
    "dataset.json": 64 * MEGABYTE,
    "calibration.json": 32 * MEGABYTE,
    "splits.csv": 64 * MEGABYTE,
    "model.keras": 1024 * MEGABYTE,
}
TOTAL = 1280 * MEGABYTE
# A file that unpacks to more than this many times its packed size is a bomb, not a run (a run's JSON
# packs about 5 to 20 times; a model is stored as it is), once it unpacks past a megabyte.
MAX_RATIO = 100
JSON_FILES = tuple(name for name in CONTENTS if name.endswith(".json"))
CHUNK = MEGABYTE
REQUIRED = ("config.json", "status.json", "evaluation.json", "model.keras")
FINISHED = (RunState.SUCCEEDED, RunState.STOPPED)


class RunFileRefused(InputError):
    """A file that cannot be opened as a run; the message says why."""


def can_pack(run: RunDirectory) -> str | None:
    """Why `run` cannot be kept as a run file yet, or None when it can."""
    if run.status().state not in FINISHED:
        return "Only a finished or stopped run can be kept as a file (this one has no final results yet)."
    missing = [name for name in REQUIRED if not (run.path / name).is_file()]
    if missing:
        return f"This run has no {' or '.join(missing)}, so it cannot be kept as a file."
    return None


def run_file_name(run: RunDirectory) -> str:
    """The file name a download of `run` gets: its readable name, made safe."""
    return f"{safe_name(run.title(), limit=80)}.studio.zip"


def pack_run(run: RunDirectory) -> bytes:
    """The run as one zip (model stored as it is: a `.keras` file is already compressed).

    Raises:
        RunFileRefused: the run has not finished.
    """
    reason = can_pack(run)
    if reason:
        raise RunFileRefused(reason)
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
            if name in JSON_FILES:  # this server's paths stay here (core.data.portable)
                content = json.dumps(portable_json(json.loads(content)), indent=1).encode()
            if name == "splits.csv":
                content = _splits(content.decode(), to_portable).encode()
            hashes[name] = hashlib.sha256(content).hexdigest()
            compression = zipfile.ZIP_STORED if name.endswith(".keras") else zipfile.ZIP_DEFLATED
            archive.writestr(name, content, compress_type=compression)
        manifest = {
            "format": FORMAT,
            "run": run.id,
            "title": run.title(),
            "packed": time.time(),
            "server": socket.gethostname(),
            "paths": "portable",
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
    """Open a run file as a run under `root`; its own id when free, else with a number added.

    Sizes and compression ratios are checked before anything is unpacked, each file is streamed to
    disk and checked against its hash, and every path it names is made local or dropped
    (`core.data.portable`), so a crafted file reads nothing outside this server's photo folders.

    Raises:
        RunFileRefused: not a run file, damaged, too large, or not a finished run; nothing is left behind.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".opening-{os.getpid()}-{time.time_ns()}"
    staging.mkdir()
    try:
        manifest = _unpack_checked(source, staging)
        _check_run(staging)
        imported = {key: manifest.get(key) for key in ("run", "title", "packed", "server")}
        write_atomic(staging / "imported.json", json.dumps({**imported, "opened": time.time()}, indent=1))
        run = RunDirectory(_move_into_place(staging, root, safe_name(str(manifest.get("run") or "run"), 80)))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    title = run.title()
    taken = {other.title() for other in list_runs(root) if other.id != run.id}
    if title in taken:  # the same run opened twice, or kept and opened on the server it came from
        run.set_about(name=unique_title(root, f"{title} (opened from a file)"))
    return run


def _check_run(folder: Path) -> None:
    """The unpacked files read as a finished run (each JSON file is bounded in size by `CONTENTS`)."""
    try:
        RunConfig.from_json((folder / "config.json").read_text())  # read to check it
        status = RunStatus.from_dict(json.loads((folder / "status.json").read_text()))
        evaluation = json.loads((folder / "evaluation.json").read_text())
        if not isinstance(evaluation, dict) or not isinstance(evaluation.get("class_names"), list):
            raise ValueError("evaluation.json has no classes")
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as error:
        raise RunFileRefused(f"This run file's settings or results cannot be read ({str(error)[:200]}).") from None
    if status.state not in FINISHED:
        raise RunFileRefused("This run file holds a run that had not finished; only finished runs can be opened.")


def _unpack_checked(source, folder: Path) -> dict:
    """Every listed file of the run file unpacked into `folder`, checked; its manifest."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise RunFileRefused(
            "This file is not a Fine-Tune Studio run file (a .studio.zip from “Keep this run as a file”)."
        ) from None
    with archive:
        try:
            manifest = json.loads(_member(archive, MANIFEST, MEGABYTE))
            listed = manifest["files"]
            if manifest.get("format") != FORMAT or not isinstance(listed, dict):
                raise ValueError
        except (KeyError, ValueError, TypeError):
            raise RunFileRefused(
                "This zip is not a Fine-Tune Studio run file (it has no readable studio-run.json)."
            ) from None
        unknown = sorted(set(listed) - set(CONTENTS))
        if unknown:
            raise RunFileRefused(f"This run file lists files a run never holds ({', '.join(unknown)[:100]}).")
        missing = [name for name in REQUIRED if name not in listed]
        if missing:
            raise RunFileRefused(f"This run file has no {' or '.join(missing)}.")
        infos = {name: _info(archive, name) for name in listed}
        _check_sizes(infos)
        for name, expected in listed.items():
            if _stream(archive, infos[name], folder / name) != expected:
                raise RunFileRefused(f"This run file is damaged: {name} is not the file that was kept.")
        for name in JSON_FILES:
            path = folder / name
            if path.is_file():
                try:
                    write_atomic(path, json.dumps(local_json(json.loads(path.read_bytes())), indent=1))
                except (ValueError, RecursionError):
                    raise RunFileRefused(f"This run file's settings or results cannot be read ({name}).") from None
        _localize_splits(folder / "splits.csv")
    return manifest


def _splits(text: str, change) -> str:
    """`splits.csv` with each path changed by `change`; rows left without a path are dropped."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=("split", "label", "path"))
    writer.writeheader()
    for row in csv.DictReader(io.StringIO(text)):
        path = change(str(row.get("path") or ""))
        if path:
            writer.writerow({"split": row.get("split") or "", "label": row.get("label") or "", "path": path})
    return buffer.getvalue()


def _localize_splits(path: Path) -> None:
    """Which photo went where, kept for the photos on this server (exports are checked on them), else removed."""
    if not path.is_file():
        return
    try:
        text = _splits(path.read_text(), to_local)
    except (UnicodeDecodeError, csv.Error):
        raise RunFileRefused("This run file's list of photos (splits.csv) cannot be read.") from None
    if text.count("\n") > 1:
        write_atomic(path, text)
    else:
        path.unlink()


def _info(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    try:
        return archive.getinfo(name)
    except KeyError:
        raise RunFileRefused(f"This run file is incomplete: it has no {name}.") from None


def _check_sizes(infos: dict[str, zipfile.ZipInfo]) -> None:
    """Refuse, before inflating a byte, a file larger than a run's ever is, or packed like a bomb."""
    for name, info in infos.items():
        if info.file_size > CONTENTS[name]:
            raise RunFileRefused(f"This run file's {name} is larger than a run's ever is ({info.file_size:,} bytes).")
        if info.file_size > MEGABYTE and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise RunFileRefused(
                f"This run file's {name} unpacks to {info.file_size / max(info.compress_size, 1):,.0f} times its "
                "packed size, which no run does: it is refused as a zip bomb."
            )
    total = sum(info.file_size for info in infos.values())
    if total > TOTAL:
        raise RunFileRefused(f"This run file unpacks to {total:,} bytes, more than a run ever holds.")


def _stream(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> str:
    """Unpack one file to `target` a megabyte at a time (never more than its header said); its SHA-256."""
    digest = hashlib.sha256()
    written = 0
    try:
        with archive.open(info) as handle, atomic_path(target) as tmp, open(tmp, "wb") as out:
            while chunk := handle.read(CHUNK):
                written += len(chunk)
                if written > info.file_size:  # zipfile stops at the header's size; this never trusts that alone
                    raise RunFileRefused(f"This run file's {info.filename} is larger than it says.")
                digest.update(chunk)
                out.write(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError):
        raise RunFileRefused(f"This run file is damaged: {info.filename} cannot be unpacked.") from None
    return digest.hexdigest()


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """One small file of the zip, refused when it unpacks to more than `limit` bytes (whatever its header claims)."""
    info = _info(archive, name)
    if info.file_size > limit:
        raise RunFileRefused(f"This run file's {name} is larger than a run's ever is ({info.file_size:,} bytes).")
    try:
        with archive.open(info) as handle:
            content = handle.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError):
        raise RunFileRefused(f"This run file is damaged: {name} cannot be unpacked.") from None
    if len(content) > limit:
        raise RunFileRefused(f"This run file's {name} is larger than a run's ever is.")
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
    """Where an opened run file came from (its original id, server and when it was kept), if it was one."""
    try:
        return json.loads((run.path / "imported.json").read_text())
    except (OSError, ValueError):
        return None


def delete_run(run: RunDirectory) -> None:
    """Delete a run's folder (never its photos, which live elsewhere), and every share link to it.

    Raises:
        InputError: the run is training or waiting; it has to be stopped first.
    """
    from core.sharing.links import forget_run

    if run.status().state.active:
        raise InputError("This run is still training or waiting. Stop it first, then delete it.")
    doomed = run.path.with_name(f".deleting-{run.id}-{time.time_ns()}")
    run.path.rename(doomed)  # gone from every list at once, even if removing the files takes a while
    forget_run(run.id)
    shutil.rmtree(doomed, ignore_errors=True)
