"""Take the model away: each export format, made on demand as a task, offered only once checked.

The run directory is the truth: a format's `exports/<format>/verification.json` says how it did
in its own runtime, `exports/<format>.progress` what a task making it is doing now.
"""

from __future__ import annotations

import time

import streamlit as st

from app_pages.share_views import said_download, say_download
from core.base.files import safe_name
from core.base.tasks import Task, read_result, result_path, start_task, task_running
from core.results.export import existing, photos_missing, progress_path, zip_path
from core.results.formats import FORMATS
from core.results.tfjs_tools import tfjs_unavailable, tools_home
from core.runs.directory import RunDirectory, runs_root


def _task(run: RunDirectory, key: str):
    return result_path(Task.EXPORT, {"run_dir": str(run.path), "format": key})


def _numbers(v) -> str:
    return (
        f"Same answer as the Keras model on {v.agreement:.1%} of {v.photos} test photos · "
        f"accuracy {v.accuracy:.1%} · {v.size_bytes / 1e6:.1f} MB · {v.latency_ms:.1f} ms a photo here"
    )


def _seconds_since(path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def take_away(run_id: str) -> None:
    """One line per format: what it is for, how its check went (or what making it is doing), and its button.

    Only while an export is being made does the list refresh itself every second; otherwise it stays
    still, so a download button is never redrawn under the pointer.
    """
    run = RunDirectory(runs_root() / run_id)
    missing = photos_missing(run)
    if missing:
        st.info(missing)
    elif any(task_running(_task(run, key)) for key in FORMATS):
        _while_making(run_id)
    else:
        _formats(run_id)


@st.fragment(run_every=1.0)
def _while_making(run_id: str) -> None:
    _formats(run_id)
    run = RunDirectory(runs_root() / run_id)
    if not any(task_running(_task(run, key)) for key in FORMATS):
        st.rerun()  # made: the page draws the list still again, with the new download


def _formats(run_id: str) -> None:
    run = RunDirectory(runs_root() / run_id)
    st.caption(
        "Each file is made from the kept model, then loaded in the program its users load it with and run on this "
        "run's test photos. Only a file that gives the same answers is offered. Each download holds the model "
        "and a MODEL_CARD.md: its classes, what it takes, its accuracy and a short example of using it."
    )
    for key, fmt in FORMATS.items():
        about, state, action = st.columns([3, 5, 2], vertical_alignment="center")
        about.markdown(f"**{fmt.title}**  \n{fmt.use}")
        task = _task(run, key)
        verification = existing(run, key)
        if task_running(task):
            line = progress_path(run, key)
            doing = line.read_text() if line.exists() else "Starting"
            state.info(f"{doing} ({_seconds_since(task.with_suffix('.pid')):.0f} s)...")
            continue
        if verification is not None and verification.passed and zip_path(run, key).exists():
            state.success(f"Checked the way its users will load it. {_numbers(verification)}")
            state.caption(f"Details for specialists: loaded with {fmt.runtime}.")
            action.download_button(
                "Download (.zip)",
                data=zip_path(run, key).read_bytes,  # read when clicked, not on every refresh
                file_name=f"{safe_name(run.title(), limit=60)}-{key}.zip",
                mime="application/zip",
                key=f"download_{key}",
                on_click=say_download,
                args=(
                    f"download_{key}",
                    f"Downloaded {safe_name(run.title(), limit=60)}-{key}.zip: the model file, "
                    "its MODEL_CARD.md and how it was checked.",
                ),
            )
            said_download(f"download_{key}", action)
            continue
        if verification is not None:
            state.error(f"**Failed its check, so it is not offered.** {_numbers(verification)}. {verification.message}")
            continue
        error = (read_result(task) or {}).get("error")
        if error:
            state.error(f"It could not be made: {error}")
        elif key == "tfjs" and tfjs_unavailable():
            state.caption(tfjs_unavailable())
            continue
        elif key == "tfjs" and not (tools_home() / "tfjs" / ".installed").exists():
            state.caption("Not made yet. The first time, the web tools are installed too (about a minute).")
        else:
            state.caption("Not made yet.")
        if action.button("Try again" if error else "Make it", key=f"make_{key}"):
            task.unlink(missing_ok=True)
            start_task(Task.EXPORT, {"run_dir": str(run.path), "format": key})
            st.rerun()  # the list refreshes itself while the export is made
