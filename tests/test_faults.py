"""Faults during a run: a really full disk, a queued second run, a broken upload.

The kill and resume of a worker is in `test_runs.py`; the server restart is in `test_browser.py`.
"""

import os
import shutil
import subprocess

import keras
import pytest

from core.runs.directory import RunDirectory
from core.runs.status import RunState
from tests.conftest import tiny_config, wait_until


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def small_disk(tmp_path):
    """A real 48 MB tmpfs file system, so a full disk is a real ENOSPC from the kernel."""
    if not _can_mount():
        pytest.skip("a real full disk needs root to mount a small tmpfs")
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount_point)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"a real full disk needs a small tmpfs, and mount refused: {result.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder) -> None:
    """Write until the kernel says the disk is full."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        for block in (1024 * 1024, 4096, 1):
            try:
                while handle.write(b"\0" * block):
                    pass
            except OSError:
                pass


@pytest.mark.heavy
def test_a_full_disk_fails_the_run_with_that_message_and_keeps_earlier_checkpoints(
    make_dataset, small_disk, monkeypatch
):
    """The disk fills up after the second epoch's checkpoint: the next write fails for real."""
    from core.base.files import save_model_atomic
    from core.training import failures, keep, phases, session, worker

    for module in (session, phases):
        monkeypatch.setattr(module, "LAST_CHECKPOINT_SECONDS", 0.0)  # a resumable checkpoint every epoch
    saves = []
    original_save = save_model_atomic

    def save_then_fill(model, path):
        original_save(model, path)
        saves.append(path)
        if len(saves) == 2:
            _fill(small_disk)

    for module in (session, phases, keep):  # every checkpoint and model the run writes
        monkeypatch.setattr(module, "save_model_atomic", save_then_fill)
    data = make_dataset({"red": 8, "green": 8})
    run = RunDirectory.create(small_disk / "runs", tiny_config(str(data), head_epochs=4, finetune_epochs=2))
    state = worker.train_run(run, echo=lambda line: None)

    assert state is RunState.FAILED
    status = run.status()
    assert status.state is RunState.FAILED and "disk is full" in status.message
    assert "best checkpoint so far is kept" in status.message
    for path in (run.best_checkpoint_path, run.last_checkpoint_path):  # earlier checkpoints still load
        keras.models.load_model(path, safe_mode=True)
        keras.backend.clear_session()
    assert not list(run.path.rglob(".*.tmp*")), "half-written files are cleaned away"
    assert not (run.path / failures.RESERVE_NAME).exists()
    assert len(run.history()) >= 2


@pytest.mark.heavy
def test_a_full_disk_while_unpacking_a_zip_says_so(make_dataset, small_disk, monkeypatch):
    import zipfile

    from core.data.datasets import DatasetError
    from core.data.sources import resolve_source

    photos = make_dataset({"red": 30, "green": 30}, size=256)
    archive = small_disk.parent / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in photos.rglob("*.png"):
            zf.write(path, f"{path.parent.name}/{path.name}")
    monkeypatch.setenv("STUDIO_DATA", str(small_disk / "data"))
    (small_disk / "data").mkdir()
    _fill(small_disk)
    with pytest.raises(DatasetError, match="disk is full"):
        resolve_source(str(archive))
    assert not (small_disk / "data" / "extracted").exists() or not any((small_disk / "data" / "extracted").iterdir())


def test_an_upload_over_the_limit_or_on_a_full_disk_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    import io

    from core.data.datasets import DatasetError
    from core.data.uploads import store_upload

    folder = tmp_path / "uploads" / "one"
    with pytest.raises(DatasetError, match="larger than the 1 MB upload limit"):
        store_upload(io.BytesIO(b"x" * 3_000_000).read, "big.zip", folder, max_bytes=1_000_000)
    assert not list(folder.iterdir())

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 0))
    with pytest.raises(DatasetError, match="disk is full"):
        store_upload(io.BytesIO(b"x" * 100).read, "small.zip", folder, max_bytes=1_000_000)
    assert not list(folder.iterdir())

    monkeypatch.undo()
    path = store_upload(io.BytesIO(b"PK" * 10).read, "../../my photos ü.ZIP", folder, max_bytes=1_000_000)
    assert path.parent == folder and path.name == "my-photos.zip" and path.read_bytes() == b"PK" * 10


@pytest.mark.heavy
def test_the_second_of_two_runs_waits_and_its_page_says_so(make_dataset, monkeypatch):
    """Two runs started together: one trains, the other is queued with its position shown."""
    from core.runs.directory import runs_root
    from core.runs.queue import start_run
    from tests.test_pages import page

    monkeypatch.setenv("STUDIO_PARALLEL_RUNS", "1")
    data = str(make_dataset({"red": 8, "green": 8}))
    first = start_run(tiny_config(data, head_epochs=8, finetune_epochs=0))
    second = start_run(tiny_config(data, finetune_epochs=0))
    wait_until(
        lambda: second.raw_status().queue_position == 1 or "queue" in second.raw_status().message,
        120,
        "the second run to queue",
    )
    at = page("train")
    at.query_params["run"] = second.id
    at.run()
    assert not at.exception
    shown = " ".join(element.value for element in [*at.markdown, *at.info, *at.caption] if element.value)
    assert "Waiting in the queue" in shown
    for run in (first, second):
        wait_until(lambda run=run: not run.status().state.active, 240, f"{run.id} to finish")
    assert first.status().state is RunState.SUCCEEDED and second.status().state is RunState.SUCCEEDED
    assert first.status().finished <= second.raw_status().started + 1.0
    assert runs_root() == first.path.parent
