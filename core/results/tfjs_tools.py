"""The TensorFlow.js converter (Python) and loader (Node.js), installed on first use into the studio's own
folder, never into the studio's environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from core.base.files import data_home
from core.results.export_base import ExportError

TFJS_PYTHON = ("tensorflowjs==4.22.0", "tf-keras==2.21.0")  # installed on first use, without their dependencies
TFJS_NPM = "@tensorflow/tfjs@4.22.0"


def tools_home() -> Path:
    """Where the web export's tools are installed on first use (`STUDIO_TOOLS`, default the data folder's tools/)."""
    return Path(os.environ.get("STUDIO_TOOLS") or data_home() / "tools").absolute()


def tfjs_unavailable() -> str | None:
    """Why the web export cannot be made on this server, or None."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node.js is not installed on this server, so a TensorFlow.js model could not be checked; ask its administrator."
    return None


def ensure_tfjs_tools(progress: Callable[[str], None]) -> Path:
    """The TF.js converter (Python, beside the main environment) and loader (Node.js), installed once.

    `tensorflowjs` pins packages that would break this environment (a full TensorFlow, JAX, an
    older `packaging`), so it is installed without its dependencies into its own folder and run
    in its own process (`core/results/tfjs_convert.py`), which never imports Keras 3.
    """
    reason = tfjs_unavailable()
    if reason:
        raise ExportError(reason)
    tools = tools_home()
    python, node = tools / "tfjs", tools / "node"
    if not (python / ".installed").exists():
        progress("Preparing the web export tools (first time only, about a minute)")
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(python),
            *TFJS_PYTHON,
        ]
        _install(command, "the TensorFlow.js converter")
        (python / ".installed").write_text(" ".join(TFJS_PYTHON))
    if not (node / ".installed").exists():
        progress("Preparing the web export tools (first time only, about a minute)")
        node.mkdir(parents=True, exist_ok=True)
        (node / "package.json").write_text(json.dumps({"name": "studio-tfjs-check", "private": True}))
        _install(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", TFJS_NPM], "TensorFlow.js for Node.js", cwd=node
        )
        (node / ".installed").write_text(TFJS_NPM)
    return tools


def _install(command: list[str], what: str, cwd: Path | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise ExportError(
            f"{what} could not be installed ({(result.stderr or result.stdout).strip()[-200:]}). The web export needs "
            "the package registries once; try again with internet."
        )


def tool_env(tools: Path) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(tools / "tfjs"), env.get("PYTHONPATH", "")])
    return env
