"""Waiting for a condition in a test: poll it, and fail loudly with what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    predicate: Callable[[], object], timeout: float = 120.0, what: str | Callable[[], str] = "", interval: float = 0.2
):
    """Poll `predicate` until it returns something true, and return that; fail loudly after `timeout` seconds.

    Args:
        what: what is being waited for, for the failure message; a callable is asked only on failure
            (to include a log, say).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"waited {timeout:.0f} s for {described or 'a condition'}")
        time.sleep(interval)
