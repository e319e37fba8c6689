"""Runs sent to a Ray cluster (core.training.cluster): a local Ray instance with two CPUs, started by this module.

Each run goes through `core.runs.directory.start_run`, as the dashboard's Start does, with STUDIO_RAY_ADDRESS
set; Stop is `RunDirectory.request_stop`, as the dashboard's Stop button does; the tests read only
the run directories, as the dashboard does.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from core.runs.directory import RunDirectory
from core.runs.queue import resume_run, start_run
from core.runs.status import RunState
from core.training.cluster import RAY_ADDRESS_ENV, gpus_asked, supervise, task_environment
from tests.conftest import REPO, tiny_config
from tests.waiting import wait_until

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-cluster.txt)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A Ray head started as docs/scaling.md says: a token made with `ray get-auth-token --generate`, then
    `ray start --head`, which turns token authentication on; in its own home and temporary folder."""
    home = tmp_path_factory.mktemp("ray-home")
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's sockets live under it
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env |= {"HOME": str(home)}
    command = str(Path(sys.executable).with_name("ray"))
    subprocess.run([command, "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
    port = _free_port()
    started = subprocess.run(
        [
            command,
            "start",
            "--head",
            f"--port={port}",
            "--num-cpus=2",
            "--num-gpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
            "--object-store-memory=80000000",
            f"--temp-dir={temp}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr[-3000:]
    assert "Token authentication is enabled" in started.stdout + started.stderr
    yield f"127.0.0.1:{port}", home
    for process in psutil.process_iter(["cmdline"]):  # this head's processes only (`ray stop` stops every Ray)
        with contextlib.suppress(psutil.Error, TypeError):
            if str(temp) in " ".join(process.info["cmdline"] or []):
                process.kill()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def cluster_address(ray_head):
    return ray_head[0]


@pytest.fixture
def on_cluster(ray_head, monkeypatch):
    """The dashboard's machine: the head's token where Ray keeps it, and STUDIO_RAY_ADDRESS; nothing more."""
    address, home = ray_head
    monkeypatch.setenv("HOME", str(home))
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(RAY_ADDRESS_ENV, address)
    return address


def log_of(run: RunDirectory) -> str:
    return run.log_path.read_text() if run.log_path.exists() else "(no log)"


def ended(run: RunDirectory, state: RunState, timeout: float = 300.0):
    """Wait for `run` to end (or be interrupted) and check that it ended as `state`."""
    wait_until(lambda: not run.status().state.active, timeout, lambda: f"{run.id} to end:\n{log_of(run)[-3000:]}")
    status = run.status()
    assert status.state is state, f"{run.id} is {status.state}: {status.message}\n{log_of(run)[-3000:]}"


def test_a_run_asks_for_the_gpus_its_devices_setting_names():
    assert [gpus_asked(devices, 8) for devices in ("cpu", "all", "1", "4")] == [0, 1, 1, 4]
    assert [gpus_asked(devices, 0) for devices in ("cpu", "all", "2")] == [0, 0, 2]  # all: a processor, as here


def test_the_task_gets_the_studios_settings_but_not_the_clusters_address(monkeypatch):
    monkeypatch.setenv(RAY_ADDRESS_ENV, "head:6379")
    monkeypatch.setenv("STUDIO_CPU_DEVICES", "2")
    env = task_environment()
    assert RAY_ADDRESS_ENV not in env and env["STUDIO_CPU_DEVICES"] == "2"
    assert env["STUDIO_RUNS"] == os.environ["STUDIO_RUNS"] and "KERAS_HOME" in env
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO)  # the studio's code, for the task to import


def test_without_ray_installed_the_run_fails_with_the_way_out(make_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv(RAY_ADDRESS_ENV, "head:6379")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # supervise sets it in this process: undone after the test
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    run = RunDirectory.create(tmp_path / "runs", tiny_config(str(make_dataset({"a": 3, "b": 3}))))
    assert supervise(run, echo=lambda line: None) is RunState.FAILED
    message = run.raw_status().message
    assert "Ray is not installed on this server" in message and "requirements-cluster.txt" in message


def test_start_is_refused_before_a_run_when_ray_is_missing(monkeypatch):
    from core.network.config import RunConfig
    from core.training.preflight import start_blockers

    assert start_blockers(RunConfig(weights="none"), None, None, True) == []
    monkeypatch.setenv(RAY_ADDRESS_ENV, "head:6379")
    assert start_blockers(RunConfig(weights="none"), None, None, True) == []  # Ray is installed here
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None if name == "ray" else object())
    [blocker] = start_blockers(RunConfig(weights="none"), None, None, True)
    assert blocker.problem.endswith("but Ray is not installed on this server.") and blocker.page == "train"
    assert "requirements-cluster.txt" in blocker.fix and blocker.details == f"{RAY_ADDRESS_ENV}=head:6379"


@pytest.mark.heavy
def test_two_runs_are_trained_by_the_cluster_and_followed_to_the_end(on_cluster, make_dataset):
    data = str(make_dataset({"red": 8, "green": 8}))
    runs = [start_run(tiny_config(data, head_epochs=3, finetune_epochs=1, seed=seed)) for seed in (1, 2)]  # all
    for run in runs:
        ended(run, RunState.SUCCEEDED)
        status = run.status()
        assert status.node["host"] == socket.gethostname() and status.node["pid"] != status.pid
        assert [int(row["epoch"]) for row in run.history()] == [1, 2, 3, 4]
        assert run.evaluation()["count"] > 0 and (run.path / "model.keras").is_file()
        assert f"Sent to the Ray cluster at {on_cluster}, asking for one processor core." in log_of(run)
        assert "phase 2 epoch 4/4" in log_of(run)  # the task's own lines, written on the node


@pytest.mark.heavy
def test_stop_while_waiting_for_a_gpu_the_cluster_lacks(on_cluster, make_dataset):
    run = start_run(tiny_config(str(make_dataset({"a": 4, "b": 4})), devices="1"))
    wait_until(lambda: "Waiting for the cluster to free 1 GPU: it has 0 now" in run.status().message, 60, "the wait")
    assert run.status().state is RunState.QUEUED
    run.request_stop()
    ended(run, RunState.STOPPED, 60)
    assert run.status().message == "Stopped while waiting for the cluster."


@pytest.mark.heavy
def test_stop_and_a_killed_worker_on_the_cluster(on_cluster, make_dataset):
    data = str(make_dataset({"red": 8, "green": 8}))
    # Long enough to stop and kill both mid-run after their first checkpoint; short enough that the resumed
    # run's remaining epochs take seconds.
    config = tiny_config(data, head_epochs=16, finetune_epochs=0, devices="cpu")
    stopped, killed = start_run(config.replace(seed=1)), start_run(config.replace(seed=2))
    for run in (stopped, killed):
        wait_until(
            lambda run=run: run.raw_status().resume_point and len(run.history()) >= 2,
            240,
            lambda run=run: f"{run.id}'s first checkpoint: {run.status().message}\n{log_of(run)[-3000:]}",
        )
    stopped.request_stop()
    os.kill(killed.raw_status().node["pid"], signal.SIGKILL)
    ended(stopped, RunState.STOPPED, 120)
    assert stopped.status().message.startswith("Stopped by request") and stopped.evaluation() is not None
    assert len(stopped.history()) < 16
    ended(killed, RunState.INTERRUPTED, 120)
    assert killed.can_resume() and "ended unexpectedly" in killed.status().message
    assert "The cluster's worker for this run ended unexpectedly" in log_of(killed)
    done_before = killed.raw_status().resume_point.epochs_done
    resume_run(killed)
    ended(killed, RunState.SUCCEEDED, 300)
    epochs = [int(row["epoch"]) for row in killed.history()]
    assert epochs == list(range(1, 17)) and done_before >= 1
    assert "Resuming after epoch" in log_of(killed)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "This server has no token for the Ray cluster at"),
        ("0123456789abcdef0123456789abcdef", "refused this server's token: it is not the token the head was started"),
    ],
)
@pytest.mark.heavy
def test_a_missing_or_wrong_token_is_said_with_the_way_out(
    on_cluster, make_dataset, tmp_path, monkeypatch, token, message
):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token here
    if token:
        monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    run = start_run(tiny_config(str(make_dataset({"a": 3, "b": 3}))))  # the supervisor's own process, as Start does
    ended(run, RunState.FAILED, 120)
    said = run.raw_status().message
    assert message in said and "~/.ray/auth_token" in said, said


def test_runs_are_never_sent_to_a_cluster_with_token_authentication_off(make_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv(RAY_ADDRESS_ENV, "head:6379")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    run = RunDirectory.create(tmp_path / "runs", tiny_config(str(make_dataset({"a": 3, "b": 3}))))
    assert supervise(run, echo=lambda line: None) is RunState.FAILED
    assert "only with Ray's token authentication" in run.raw_status().message
