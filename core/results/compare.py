"""Every run in one table, and two or more runs side by side: settings, classes, time and size.

Everything here is read from the run directories, so the Runs page, the CLI (`python -m core
runs`) and the report show the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from core.base.settings import get_value
from core.data.portable import SOURCE_KEYS
from core.data.sources import source_label
from core.network.config import SETTINGS
from core.runs.directory import RunDirectory, distinct_titles
from core.runs.status import KEPT_MODEL


def _network(config) -> str:
    from core.network.backbones import BACKBONES

    return BACKBONES[config.backbone].label if config.backbone in BACKBONES else config.backbone


def _recipe(config) -> str:
    from core.network.recipes import RECIPES, matching_recipe

    key = matching_recipe(config)
    return RECIPES[key].title if key else "custom"


def duration(run: RunDirectory) -> float | None:
    """Seconds from the start of training to its end (a finished run's), else None."""
    status = run.raw_status()
    if status.started and status.finished and status.finished >= status.started:
        return status.finished - status.started
    return None


def model_megabytes(run: RunDirectory) -> float | None:
    try:
        return run.model_path.stat().st_size / 1e6
    except OSError:
        return None


def run_row(run: RunDirectory) -> dict:
    """One run as a row of the runs table (a run whose files cannot be read still gets its row)."""
    from core.data.sources import source_label

    status = run.status()
    row = {"id": run.id, "name": run.title(), "state": status.state.label, "notes": run.about().notes}
    try:
        config = run.config()
    except (OSError, ValueError):
        return {**row, "data": "", "network": "", "recipe": "", "settings": "settings cannot be read"}
    # the status names the classes; dataset.json (every photo) is read only for a run that has not yet
    classes = len(status.class_names or (run.dataset() or {}).get("class_names") or [])
    size = status.image_size or config.image_size
    return {
        **row,
        "data": source_label(config.data) + (f" ({classes} classes)" if classes else ""),
        "network": _network(config),
        "recipe": _recipe(config),
        "settings": (
            f"{size} px, {config.head_epochs} + {config.finetune_epochs} epochs, batch {config.batch_size}"
            + (", fast mode" if config.fast_mode else "")
        ),
        "accuracy": status.accuracy,
        "measured on": {"test": "test photos", "val": "validation photos"}.get(status.accuracy_split or "", ""),
        "minutes": (duration(run) or 0) / 60 or None,
        "started": datetime.fromtimestamp(status.created) if status.created else None,
    }


def runs_frame(runs: list[RunDirectory]) -> pd.DataFrame:
    """The runs table: one row per run, newest first, with its id for the actions."""
    columns = [
        "id",
        "name",
        "state",
        "accuracy",
        "measured on",
        "network",
        "data",
        "settings",
        "recipe",
        "minutes",
        "started",
    ]
    return pd.DataFrame([run_row(run) for run in runs], columns=[*columns, "notes"])


def settings_frame(runs: list[RunDirectory], plain: bool = True) -> pd.DataFrame:
    """Every setting (rows, by its label) of each run (columns, by title), and whether they differ.

    `plain`: values in words ("yes", a choice's label, "none"), as the pages and the report show them;
    otherwise as the CLI takes them. Folders and files are named, not given as paths: the report, which
    a read-only link offers, shows this.
    """
    names, values = distinct_titles(runs), {}
    for run in runs:
        config = run.config()
        column = {}
        for info in SETTINGS.values():
            value, meta = get_value(config, info.name), info.declaration
            named = value in meta.special if isinstance(value, str) else False
            if info.name in SOURCE_KEYS and value and not named:  # a folder or file by its name, never a path
                column[meta.label or info.name] = source_label(value)
            elif plain:
                column[meta.label or info.name] = meta.plain(value)
            else:
                column[meta.label or info.name] = meta.show(value) if meta.show and value is not None else str(value)
        values[names[run.id]] = column
    frame = pd.DataFrame(values)
    frame["differs"] = frame.nunique(axis=1) > 1
    return frame


def per_class_frame(runs: list[RunDirectory]) -> pd.DataFrame:
    """The share of each class's test photos each run got right (rows: classes in any run)."""
    names, values = distinct_titles(runs), {}
    for run in runs:
        evaluation = run.evaluation() or {}
        values[names[run.id]] = {row["class"]: row["recall"] for row in evaluation.get("per_class", [])}
    return pd.DataFrame(values)


def facts_frame(runs: list[RunDirectory]) -> pd.DataFrame:
    """Test accuracy and photos, time to train, model size, epochs, and which model was kept."""
    names, values = distinct_titles(runs), {}
    for run in runs:
        status = run.status()
        evaluation = run.evaluation() or {}
        seconds = duration(run)
        size = model_megabytes(run)
        values[names[run.id]] = {
            "state": status.state.label,
            "test accuracy": f"{status.accuracy:.1%}" if status.accuracy is not None else "none",
            "photos tested": str(evaluation.get("count", "")),
            "time to train": f"{seconds / 60:.1f} min" if seconds is not None else "not finished",
            "model size": f"{size:.1f} MB" if size is not None else "no model",
            "epochs trained": f"{status.epoch} of {status.epochs_total}",
            "model kept": KEPT_MODEL.get(status.kept or "", ""),
        }
    return pd.DataFrame(values)


def validation_curves(runs: list[RunDirectory]) -> dict[str, pd.DataFrame]:
    """Each run's per-epoch history (`epoch`, `val_accuracy`, `accuracy`, `phase`), by column name."""
    names, curves = distinct_titles(runs), {}
    for run in runs:
        history = pd.DataFrame(run.history())
        if not history.empty and "epoch" in history:
            curves[names[run.id]] = history
    return curves


@dataclass(frozen=True)
class PairedTest:
    """Two runs' answers on the same photos, and McNemar's exact test on the photos where they disagree.

    Attributes:
        photos: the photos both were tested on.
        only_first, only_second: photos only the first (the second) run got right.
        chance: the two-sided p-value: how often a difference at least this large happens when both runs are
            equally good.
    """

    photos: int
    only_first: int
    only_second: int
    chance: float


def paired_test(first: RunDirectory, second: RunDirectory) -> PairedTest | None:
    """McNemar's exact test on `first` and `second`'s right and wrong answers, when both were tested on the same
    photos (the same split of the same photos); None otherwise."""
    from scipy.stats import binomtest

    answers = []
    for run in (first, second):
        evaluation = run.evaluation() or {}
        split = evaluation.get("split", "test")
        try:
            tested = {path for kind, _, path in run.splits() if kind == split}
        except (OSError, ValueError):
            return None
        if not tested or len(tested) != evaluation.get("count"):
            return None
        answers.append((tested, {m["path"] for m in evaluation.get("misclassified", [])}))
    (photos, wrong_first), (other, wrong_second) = answers
    if photos != other:
        return None
    only_first, only_second = len(wrong_second - wrong_first), len(wrong_first - wrong_second)
    disagree = only_first + only_second
    chance = binomtest(min(only_first, only_second), disagree, 0.5).pvalue if disagree else 1.0
    return PairedTest(len(photos), only_first, only_second, float(chance))


def paired_words(test: PairedTest, first: str, second: str) -> str:
    """The test in words: “B” is right on 14 photos “A” gets wrong and wrong on 5 that “A” gets right: …"""
    if test.only_first > test.only_second:
        first, second = second, first
    better, worse = max(test.only_first, test.only_second), min(test.only_first, test.only_second)
    if not better:
        return f"“{first}” and “{second}” give the same right and wrong answers on all {test.photos} photos both were tested on."
    head = (
        f"“{second}” is right on {better} photo{'s' * (better != 1)} “{first}” gets wrong and wrong on {worse} that "
        f"“{first}” gets right"
    )
    if test.chance < 0.05:
        verdict = f"so the difference is unlikely to be luck: “{second}” does better on photos like these."
    else:
        verdict = "so this difference may be luck: more test photos would tell."
    often = "less than 1%" if test.chance < 0.01 else f"{test.chance:.0%}"
    return f"{head}: a difference this large happens by chance {often} of the time, {verdict}"


def paired_tests(runs: list[RunDirectory]) -> list[str]:
    """McNemar's test in words for the first run against each other run tested on the same photos."""
    names, lines = distinct_titles(runs), []
    for other in runs[1:]:
        test = paired_test(runs[0], other)
        if test is not None:
            lines.append(paired_words(test, names[runs[0].id], names[other.id]))
    return lines


def comparison_text(runs: list[RunDirectory]) -> str:
    """The comparison as plain text for the CLI: facts, then the settings that differ, then each class."""
    # Columns by id: titles are too wide for a terminal.
    ids = {title: key for key, title in distinct_titles(runs).items()}
    facts = facts_frame(runs).rename(columns=ids)
    settings = settings_frame(runs, plain=False).rename(columns=ids)
    differing = settings[settings["differs"]].drop(columns="differs")
    classes = per_class_frame(runs).rename(columns=ids).map(lambda share: "" if pd.isna(share) else f"{share:.0%}")
    same = len(settings) - len(differing)
    parts = [
        *(f"{run.id}: {run.title()}" for run in runs),
        "",
        facts.to_string(),
        "",
        "Settings that differ:" if len(differing) else "Every setting is the same.",
    ]
    if len(differing):
        parts += [differing.to_string(), f"({same} other settings are the same.)"]
    parts += ["", "Share of each class's test photos it got right:", classes.to_string()]
    tests = paired_tests(runs)
    if tests:
        parts += ["", "Is the difference more than chance? (McNemar's exact test)", *tests]
    return "\n".join(parts)
