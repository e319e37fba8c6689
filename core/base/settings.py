"""The declaration of a setting: everything the CLI, the pages, the recipes and validation need.

A setting is a field of `RunConfig` (or of a config nested in it, such as the
augmentation) whose `metadata["setting"]` is a `Setting`: its label and help in plain
words, its bounds or choices, its CLI flag and how text becomes a value. Validation,
the CLI parser (`core.commands.cli`), the page widgets (`app_pages/widgets.py`) and recipe
application (`core.network.recipes`) are all derived from it, so a setting's bounds live in one
place.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.base.errors import InputError


class ConfigError(InputError):
    """A setting a person has to change; `setting` names it (None for a rule across settings)."""

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True)
class Setting:
    """How one config field is shown, typed in, bounded and explained.

    Attributes:
        label: its name on the pages, in plain words.
        help: one or two sentences on what it does.
        flag: the CLI flag; "" means `--` and the field name with dashes; None: not on the CLI.
        low, high: inclusive bounds of a number (of each number, for a tuple of them).
        above_low, below_high: make that bound exclusive.
        choices: the allowed values, each with its label.
        special: values with a meaning of their own, said in words wherever the value is shown plainly
            (image size 0: chosen from the photos; weights "imagenet": pretrained on ImageNet).
        recipe: recipes decide this setting.
        widget: "slider" to show a number as a slider; otherwise chosen from the type.
        step, format: the widget's step and number format.
        parse, show: text (a CLI argument, a text box) to value, and back.
        kind: the value's type, when the default (None) cannot tell.
        page: where a person sets it in the dashboard ("data", "model" or "train").
        old_flags: flags it had before a rename: still accepted, not listed in `--help`.
    """

    label: str
    help: str = ""
    flag: str | None = ""
    low: float | None = None
    high: float | None = None
    above_low: bool = False
    below_high: bool = False
    choices: Mapping[Any, str] | None = None
    special: Mapping[Any, str] = field(default_factory=dict)
    recipe: bool = False
    widget: str = ""
    step: float | None = None
    format: str | None = None
    parse: Callable[[str], Any] | None = None
    show: Callable[[Any], str] | None = None
    kind: type | None = None
    required: bool = False
    page: str = "train"
    old_flags: tuple[str, ...] = ()

    def bounds_text(self) -> str:
        """The allowed range in words: "0 to 1000", "above 0 and at most 1"."""
        low = f"above {self.low:g}" if self.above_low else f"at least {self.low:g}"
        high = f"below {self.high:g}" if self.below_high else f"at most {self.high:g}"
        if not (self.above_low or self.below_high):
            text = f"{self.low:g} to {self.high:g}"
        else:
            text = f"{low} and {high}"
        for value, meaning in self.special.items():
            text += f", or {self.show(value) if self.show else value} ({meaning})"
        return text

    def plain(self, value: Any) -> str:
        """The value as a person reads it (the report, the Runs page): its meaning or its choice's label
        (first sentence), yes or no, "none"; `show` or the plain text otherwise."""
        for words in (self.special, self.choices or {}):
            try:
                if value in words:  # "MobileNetV2 (width 0.5): Fast and…" → its name; "Auto: when…" whole
                    head, _, tail = words[value].split(". ")[0].partition(": ")
                    return f"{head}: {tail}" if tail and " " not in head else head
            except TypeError:  # an unhashable value has no label
                break
        if value is None or value == "" or value == ():
            return "none"
        if isinstance(value, bool):
            return "yes" if value else "no"
        text = self.show(value) if self.show else str(value)
        return "automatic" if text == "auto" else text

    def in_bounds(self, number: float) -> bool:
        if number in self.special:
            return True
        if not math.isfinite(number):
            return False
        low_ok = self.low is None or (number > self.low if self.above_low else number >= self.low)
        high_ok = self.high is None or (number < self.high if self.below_high else number <= self.high)
        return low_ok and high_ok


def setting(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None, **declaration) -> Any:
    """A dataclass field carrying its `Setting` declaration."""
    meta = {"setting": Setting(**declaration)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SettingInfo:
    """A declared setting with where it lives: `name` is its dotted path ("augmentation.zoom")."""

    name: str
    declaration: Setting
    default: Any
    kind: type

    @property
    def flag(self) -> str | None:
        if self.declaration.flag is None:
            return None
        return self.declaration.flag or "--" + self.name.split(".")[-1].replace("_", "-")

    @property
    def widget_key(self) -> str:
        return self.name


def declared(config_class, prefix: str = "") -> Iterator[SettingInfo]:
    """Every setting of `config_class`, nested configs' settings included, in declaration order."""
    instance = config_class()
    for item in dataclasses.fields(config_class):
        value = getattr(instance, item.name)
        name = prefix + item.name
        if dataclasses.is_dataclass(value) and "setting" not in item.metadata:
            yield from declared(type(value), prefix=f"{name}.")
        elif "setting" in item.metadata:
            declaration = item.metadata["setting"]
            yield SettingInfo(name, declaration, value, declaration.kind or type(value))


def get_value(config, name: str) -> Any:
    for part in name.split("."):
        config = getattr(config, part)
    return config


def with_value(config, name: str, value: Any):
    """A copy of `config` with the (possibly nested) setting `name` replaced."""
    head, _, rest = name.partition(".")
    if rest:
        return dataclasses.replace(config, **{head: with_value(getattr(config, head), rest, value)})
    return dataclasses.replace(config, **{head: value})


def check(info: SettingInfo, value: Any) -> None:
    """Raises:
    ConfigError: `value` is not of the setting's type, or outside its bounds or choices.
    """
    meta = info.declaration
    shown = meta.show(value) if meta.show and value is not None else value

    def fail(expected: str) -> None:
        raise ConfigError(f"{meta.label} must be {expected}. Received: {shown!r}", info.name)

    if value is None:
        if info.default is not None or meta.required:
            fail("given")
        return
    if info.kind is bool:
        if not isinstance(value, bool):
            fail("true or false")
        return
    if meta.choices is not None:
        if value not in meta.choices:
            fail("one of " + ", ".join(str(c) for c in meta.choices))
        return
    if info.kind in (int, float):
        whole = isinstance(value, int) and not isinstance(value, bool)
        if (info.kind is int and not whole) or (info.kind is float and not (whole or isinstance(value, float))):
            fail("a whole number" if info.kind is int else "a number")
        if not meta.in_bounds(value):
            fail(meta.bounds_text())
        return
    if info.kind is tuple:
        if not all(isinstance(v, int) and not isinstance(v, bool) and meta.in_bounds(v) for v in value):
            fail(f"whole numbers from {meta.low:g} to {meta.high:g}")
        return
    if not isinstance(value, info.kind):
        fail(f"a {info.kind.__name__}")
    if info.kind is str and meta.required and not value:
        fail("given")


def parse_text(info: SettingInfo, text: str) -> Any:
    """A value from what a person typed (a CLI argument, a text box).

    Raises:
        ConfigError: text that does not read as this setting's kind of value.
    """
    meta = info.declaration
    try:
        if meta.parse:
            return meta.parse(text)
        if info.kind is bool:
            return {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}[text.lower()]
        if info.kind in (int, float):
            return info.kind(text)
        return text
    except InputError as error:
        raise ConfigError(str(error), info.name) from None
    except (ValueError, KeyError):
        what = {int: "a whole number", float: "a number", bool: "true or false"}.get(info.kind, "a valid value")
        raise ConfigError(f"{meta.label} must be {what}. Received: {text!r}", info.name) from None
