"""One way to write a file, one way to start a detached process: both checked for what they promise."""

import os

import pytest

from core.base.files import atomic_path, safe_name, write_atomic
from core.base.processes import ProcessRecord, spawn_core
from tests.conftest import wait_until


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path):
    path = tmp_path / "status.json"
    write_atomic(path, "old")
    with pytest.raises(RuntimeError, match="killed mid-write"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["status.json"]
    write_atomic(path, b"new")
    assert path.read_text() == "new"


@pytest.mark.parametrize("text, expected", [("my run", "my-run"), ("../../x", "x"), ("", "run"), ("ünï/cødé", "n-c-d")])
def test_safe_name(text, expected):
    assert safe_name(text) == expected


@pytest.mark.heavy
def test_a_detached_process_is_recognised_while_it_lives_and_not_after(tmp_path):
    log = tmp_path / "log.txt"
    process = spawn_core(["backbones"], log_path=log)
    wait_until(lambda: not process.alive(), 60, "`python -m core backbones` to end")
    assert "mobilenet_v2_0.5" in log.read_text()
    assert not ProcessRecord(os.getpid(), 0.0).alive()  # same pid, another start time: another process
    assert ProcessRecord.of(os.getpid()).alive()


@pytest.mark.heavy
def test_a_detached_process_has_a_session_of_its_own(tmp_path):
    """So a killed or restarted dashboard does not take a worker or a task down with it."""
    arguments = '{"backbone": "mobilenet_v2_0.35", "image_size": 32, "pooling": "avg", "head_units": [], "classes": 2}'
    process = spawn_core(["task", "network", arguments, str(tmp_path / "out.json")])  # seconds: it imports Keras
    assert os.getsid(process.pid) == process.pid
    wait_until(lambda: (tmp_path / "out.json").exists(), 120, "the task's answer")
    assert "head_params" in (tmp_path / "out.json").read_text()
