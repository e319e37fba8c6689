"""Starting the dashboard on a free local port, for the browser tests and the timing benchmark."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

from tests.waiting import wait_until

REPO = Path(__file__).resolve().parent.parent


def start_dashboard(env: dict[str, str], log_path: Path, timeout: float = 60.0) -> tuple[subprocess.Popen, str, float]:
    """`streamlit run streamlit_app.py` on 127.0.0.1; returns the process, its URL and seconds until healthy.

    Raises:
        AssertionError: the server did not answer its health check in time (its output is in `log_path`).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]
    started = time.perf_counter()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url), timeout, f"the dashboard to start (its output is in {log_path})", 0.05)
    except AssertionError:
        stop_dashboard(process)
        raise
    return process, url, time.perf_counter() - started


def _healthy(url: str) -> bool:
    try:
        return urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok"
    except OSError:
        return False


def stop_dashboard(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
