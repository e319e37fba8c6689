"""Runs sent to a Ray cluster instead of this machine's queue, when `STUDIO_RAY_ADDRESS` is set.

A run's local process is then a small supervisor (`python -m core cluster RUN`, or `python -m core
train` itself): it connects to the cluster, submits the run as one Ray task that asks for the run's
GPUs (`--devices`: all is one GPU, N is N, cpu is none), relays a Stop pressed while the task waits
for room, and waits for it. The task trains exactly as a local worker does, in a fresh worker
process, writing the run directory, which must be on storage every node reaches: the dashboard
follows it there as it follows a local run (live curves, Stop, failure messages).

The supervisor is the process the run's status records, so the dashboard's existing rule holds: a
run whose process ended while it was active reads as interrupted and can resume. A Ray worker that
dies takes its supervisor's wait with it (`max_retries=0`), which then ends; Ray in turn cancels the
tasks of a supervisor that dies.

Ray is an optional extra (`requirements-cluster.txt`) imported only here, only in those processes:
the dashboard reads an environment variable and nothing more.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from core.base.processes import NO_RAY, PROJECT_ROOT, RAY_ADDRESS_ENV, cluster_address
from core.runs.directory import RunDirectory
from core.runs.status import RunState, Stage

POLL_SECONDS = 0.5
# Passed to the task's worker: where the studio keeps its data and caches, how TensorFlow logs and how the
# processor is split. Never the cluster's address: the task trains where it is.
PASSED_ENV_PREFIXES = ("STUDIO_", "KERAS_HOME", "TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")


# Ray's token authentication (Ray 2.52 and later): every connection to the cluster carries the token that
# `ray get-auth-token --generate` wrote on the head; a cluster without it runs any job from anyone who
# reaches its port, so runs are never sent to one.
AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_HELP = (
    "Copy the head's token file (~/.ray/auth_token on the head, made there by `ray get-auth-token --generate`) to "
    "~/.ray/auth_token on this server, or name it in RAY_AUTH_TOKEN_PATH (docs/scaling.md)."
)
NO_TOKEN = "This server has no token for the Ray cluster at {address}, which needs one. " + TOKEN_HELP
TOKEN_REFUSED = (
    "The Ray cluster at {address} refused this server's token: it is not the token the head was started with. "
    + TOKEN_HELP
)


def token_authentication() -> str | None:
    """Turn Ray's token authentication on for this process and its tasks; why not, when it was turned off."""
    mode = os.environ.get(AUTH_MODE_ENV, "").strip().lower()
    if mode and mode != "token":
        return (
            f"Runs go to a Ray cluster only with Ray's token authentication, and {AUTH_MODE_ENV} is “{mode}” on this "
            f"server. Start the cluster with a token (docs/scaling.md) and unset {AUTH_MODE_ENV}."
        )
    os.environ[AUTH_MODE_ENV] = "token"
    return None


def _answers(address: str, timeout: float = 3.0) -> bool:
    """Whether something listens at `host:port`."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def gpus_asked(devices: str, cluster_gpus: int) -> int:
    """The GPUs a run's Ray task asks for: `all` is one (a task's GPUs are on one node), or none on a cluster
    without GPUs (a processor, as on a laptop); N is N; cpu is none."""
    if devices == "cpu":
        return 0
    if devices == "all":
        return 1 if cluster_gpus else 0
    return int(devices)


def task_environment() -> dict[str, str]:
    """The environment of the task's worker: the studio's code on its path, and the studio's settings."""
    env = {key: value for key, value in os.environ.items() if key.startswith(PASSED_ENV_PREFIXES)}
    env.pop(RAY_ADDRESS_ENV, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return env


def supervise(run: RunDirectory, echo=print) -> RunState:
    """Send `run` to the cluster and wait for it; the state it ended in.

    A run the cluster could not take fails with the reason in plain words. A run whose Ray worker died
    is left as its task last wrote it, active, for the dashboard to read as interrupted once this
    process ends (`RunDirectory.status`).
    """
    from core.base.processes import ProcessRecord

    address = cluster_address() or ""  # set: this process is started only for a cluster
    process = ProcessRecord.of(os.getpid())
    run.update_status(pid=process.pid, pid_started=process.started)
    refusal = token_authentication()  # before Ray is imported: it reads the mode once, at import
    if refusal:
        return _refuse(run, refusal, echo)
    try:
        import ray
    except ImportError:
        return _refuse(run, " ".join(NO_RAY), echo)
    try:
        ray.init(
            address=address,
            namespace="fine-tune-studio",
            runtime_env={"env_vars": task_environment()},
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    except ray.exceptions.AuthenticationError:
        return _refuse(run, NO_TOKEN.format(address=address), echo)
    except Exception as error:  # Ray raises ConnectionError, ValueError or its own errors, by version
        if _answers(address):  # the head is there: with token authentication, a refusal reads as this
            return _refuse(run, TOKEN_REFUSED.format(address=address), echo)
        return _refuse(
            run,
            f"The Ray cluster at {address} could not be reached ({type(error).__name__}: {str(error)[:200]}). "
            f"Check that it is running and that {RAY_ADDRESS_ENV} names its head (host:port).",
            echo,
        )
    config = run.config()
    cluster_gpus = int(ray.cluster_resources().get("GPU", 0))
    gpus = gpus_asked(config.devices, cluster_gpus)
    asks = f"{gpus} GPU{'s' if gpus != 1 else ''}" if gpus else "one processor core"
    waiting = f"Waiting for the cluster to free {asks}. It starts by itself."
    if gpus > cluster_gpus:
        waiting = (
            f"Waiting for the cluster to free {asks}: it has {cluster_gpus} now. The run starts when nodes with "
            "enough GPUs join; Stop it, or choose fewer devices under Hardware on the Train page."
        )
    # One run per worker process (max_calls=1): each starts TensorFlow afresh, its devices chosen before it starts.
    task = ray.remote(max_calls=1)(train_on_node).options(
        num_cpus=1, num_gpus=gpus, max_retries=0, name=f"fine-tune-studio {run.id}"
    )
    # Written before the task exists: once it does, only the task writes the status (it may start at once).
    run.update_status(state=RunState.QUEUED, stage=Stage.WAITING, message=waiting)
    try:
        reference = task.remote(str(run.path))
    except Exception as error:  # the cluster refused the task (resources it can never have, a lost connection)
        return _refuse(
            run, f"The Ray cluster at {address} did not take the run ({type(error).__name__}: {error}).", echo
        )
    echo(f"Sent to the Ray cluster at {address}, asking for {asks}.")
    while not ray.wait([reference], timeout=POLL_SECONDS)[0]:
        if run.stop_requested() and run.raw_status().state is RunState.QUEUED:
            ray.cancel(reference, force=True)
            run.update_status(
                state=RunState.STOPPED,
                stage=Stage.DONE,
                finished=time.time(),
                message="Stopped while waiting for the cluster.",
            )
            return RunState.STOPPED
    try:
        return RunState(ray.get(reference))
    except ray.exceptions.RayError as error:
        echo(f"The cluster's worker for this run ended unexpectedly: {type(error).__name__}: {str(error)[:500]}")
        return RunState.INTERRUPTED


def train_on_node(run_path: str) -> str:
    """The Ray task: train the run here, as a local worker would, its log appended to the run's `log.txt`."""
    from core.training.worker import train_run

    run = RunDirectory(run_path)
    run.update_status(node={"host": socket.gethostname(), "pid": os.getpid()})
    with open(run.log_path, "a", buffering=1) as log:
        state = train_run(run, echo=lambda line: print(line, file=log, flush=True), record_process=False)
    return state.value


def _refuse(run: RunDirectory, message: str, echo) -> RunState:
    echo(f"error: {message}")
    run.update_status(state=RunState.FAILED, stage=Stage.DONE, finished=time.time(), message=message)
    return RunState.FAILED
