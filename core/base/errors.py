"""The one kind of error a person can act on: bad input, said in plain words.

Every module raises its own subclass (a bad setting, an unusable dataset, weights that
cannot be had), so the CLI, the worker and the tasks can tell "the person must change
something" from "the program broke" with a single `except InputError`.
"""

from __future__ import annotations


class InputError(ValueError):
    """Input that cannot work as it is; the message says what is wrong and what to do."""


def first_line(error: BaseException, limit: int = 160) -> str:
    """The first line of an error's message (or its type's name), short enough for a sentence."""
    text = str(error).strip().splitlines()
    return text[0][:limit] if text else type(error).__name__
