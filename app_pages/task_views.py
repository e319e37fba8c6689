"""Waiting for a task (`core.base.tasks.Task`) from a page: its result when ready, and the page kept responsive."""

from __future__ import annotations

import time

import streamlit as st

from core.base.tasks import read_result, start_task, task_running


def task_if_done(name: str, args: dict) -> dict | None:
    """A task's result if it is ready; otherwise start it (once) and return None without waiting."""
    path = start_task(name, args)
    result = read_result(path) if path.exists() else None
    if result is not None and "error" in result:
        path.unlink(missing_ok=True)  # let a later visit try again
        return None
    return result


def task_result(name: str, args: dict, message: str) -> tuple[dict | None, str | None]:
    """Run a TensorFlow task outside this process and wait for it, staying interruptible.

    Streamlit can only stop a script at a Streamlit call, so the wait touches the page
    every quarter second: a click elsewhere is answered at once, and the task still
    finishes and caches its result for next time.
    """
    path = start_task(name, args)
    slot = st.empty()
    started = time.time()
    while not path.exists() and task_running(path):
        slot.caption(f"{message} ({time.time() - started:.0f} s)")
        time.sleep(0.25)
    slot.empty()
    result = read_result(path)
    if result is None or "error" in result:
        path.unlink(missing_ok=True)  # let the next visit try again
        return None, (result or {}).get("error", "The helper process ended without an answer.")
    return result, None
