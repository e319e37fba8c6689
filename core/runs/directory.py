"""Run directories: the single source of truth for a training run.

`runs/<id>/` holds `config.json`, `status.json`, `events.jsonl`, `history.csv`,
`log.txt`, `checkpoints/best.keras`, `model.keras`, `evaluation.json`,
`dataset.json` and `splits.csv` (see docs/run-directory.md). Pages only read these
files, so a refresh, a closed tab or a restarted server loses nothing. Runs train in
worker processes, one at a time per machine by default, the others waiting in order."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.base.files import safe_name, write_atomic
from core.base.processes import process_alive
from core.network.config import RunConfig
from core.runs.status import ResumePoint, RunState, RunStatus

# The columns of a run's history.csv, one row per epoch (`core.training.callbacks` writes it).
HISTORY_COLUMNS = ("phase", "epoch", "seconds", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


@dataclass(frozen=True)
class About:
    """What a person calls a run and notes about it (`about.json`); the run's id never changes."""

    name: str = ""
    notes: str = ""


def run_title(config: RunConfig, class_names: list[str], created: float) -> str:
    """A name a person can read: "Ants vs bees · MobileNetV2 · quick · 2 Dec 16:46".

    The data part is the classes when there are up to four, else the dataset's name and its
    number of classes; the network part is its family's name; then the recipe, so two runs of the same
    photos and network can be told apart.
    """
    from core.data.sources import source_label
    from core.network.backbones import BACKBONES

    names = [name.replace("_", " ") for name in class_names]
    if len(names) == 2:
        data = f"{names[0]} vs {names[1]}"
    elif 2 < len(names) <= 4:
        data = ", ".join(names[:-1]) + f" and {names[-1]}"
    else:
        data = source_label(config.data) + (f" ({len(names)} classes)" if names else "")
    network = BACKBONES[config.backbone].label.split(" (")[0] if config.backbone in BACKBONES else config.backbone
    when = datetime.fromtimestamp(created)
    return f"{data[:1].upper()}{data[1:]} · {network} · {recipe_name(config)} · {when.day} {when:%b %H:%M}"


def recipe_name(config: RunConfig) -> str:
    """The recipe a run's settings follow, in a word or two: "default", "quick", or "custom settings"."""
    from core.network.recipes import RECIPES, matching_recipe

    # The network is named beside it, and Quick keeps the network chosen: match the schedule, whatever the network.
    key = next(
        (
            key
            for key, recipe in RECIPES.items()
            if matching_recipe(config.replace(backbone=recipe.config().backbone)) == key
        ),
        None,
    )
    if key is None:
        return "custom settings"
    return {"studio": "default", "quick": "quick"}.get(key, RECIPES[key].title.split(" (")[0])


def runs_root() -> Path:
    """Where runs live: `STUDIO_RUNS`, default `./runs`."""
    return Path(os.environ.get("STUDIO_RUNS", "runs")).absolute()


class RunDirectory:
    """One run's files, with atomic writes so a reader never sees half a file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    events_path = property(lambda self: self.path / "events.jsonl")
    history_path = property(lambda self: self.path / "history.csv")
    log_path = property(lambda self: self.path / "log.txt")
    best_checkpoint_path = property(lambda self: self.path / "checkpoints" / "best.keras")
    last_checkpoint_path = property(lambda self: self.path / "checkpoints" / "last.keras")
    model_path = property(lambda self: self.path / "model.keras")
    first_model_path = property(lambda self: self.path / "checkpoints" / "first.keras")
    evaluation_path = property(lambda self: self.path / "evaluation.json")
    dataset_path = property(lambda self: self.path / "dataset.json")
    splits_path = property(lambda self: self.path / "splits.csv")
    stop_path = property(lambda self: self.path / "stop")
    about_path = property(lambda self: self.path / "about.json")
    calibration_path = property(lambda self: self.path / "calibration.json")

    @classmethod
    def create(
        cls, root: str | os.PathLike, config: RunConfig, run_id: str | None = None, title: str = ""
    ) -> RunDirectory:
        """Make a new run directory with its config, a `queued` status and, if given, its readable title."""
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        if run_id is None:
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            label = safe_name(config.name or f"{config.backbone}-{Path(config.data).stem or config.data}")
            run_id = f"{stamp}-{label}"
        run_id = safe_name(run_id, limit=80)
        path = root / run_id
        suffix = 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                suffix += 1
                path = root / f"{run_id}-{suffix}"
        run = cls(path)
        run.write_config(config)
        run.update_status(state=RunState.QUEUED, created=time.time(), message="Waiting to start")
        if title or config.name:
            run.set_about(name=title or config.name)
        return run

    def about(self) -> About:
        """The name and notes a person gave the run (empty until one is given or the worker names it)."""
        try:
            return About(**json.loads(self.about_path.read_text()))
        except (OSError, ValueError, TypeError):
            return About()

    def set_about(self, name: str | None = None, notes: str | None = None) -> About:
        """Rename or annotate the run. The id, and so every link to it, stays the same."""
        about = self.about()
        about = About(name=about.name if name is None else name.strip(), notes=about.notes if notes is None else notes)
        write_atomic(self.about_path, json.dumps(dataclasses.asdict(about), indent=1))
        return about

    def title(self) -> str:
        """The run's readable name: the one given, else made from its data, network and start time."""
        name = self.about().name
        if name:
            return name
        dataset = self.dataset() or {}
        try:
            config = self.config()
        except (OSError, ValueError):
            return self.id
        return run_title(config, dataset.get("class_names") or [], self.raw_status().created or time.time())

    def write_config(self, config: RunConfig) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.config_path, config.to_json())

    def config(self) -> RunConfig:
        return RunConfig.from_json(self.config_path.read_text())

    def image_size(self) -> int:
        """The size the run's images are resized to: the config's, or what `auto` chose (in the status)."""
        return int(self.raw_status().image_size or self.config().image_size)

    def raw_status(self) -> RunStatus:
        """The status as the worker last wrote it."""
        try:
            return RunStatus.from_dict(json.loads(self.status_path.read_text()))
        except (OSError, ValueError, TypeError):
            return RunStatus()

    def update_status(self, **changes: Any) -> RunStatus:
        """Write the status with `changes` (RunStatus fields); only a change of state is worth an fsync."""
        status = self.raw_status().updated_with(**changes)
        write_atomic(self.status_path, json.dumps(status.to_dict(), indent=2, default=str), durable="state" in changes)
        return status

    def status(self) -> RunStatus:
        """The status, with a run whose worker died shown as `interrupted` rather than forever running."""
        status = self.raw_status()
        if status.state.active and status.pid and not process_alive(status.pid, status.pid_started):
            keeps = ", and it can resume from its last finished epoch." if self.last_checkpoint_path.exists() else "."
            return dataclasses.replace(
                status,
                state=RunState.INTERRUPTED,
                message="The training process ended unexpectedly (the machine or server may have restarted). "
                "The history and the best checkpoint up to that point are kept" + keeps,
            )
        return status

    def can_resume(self) -> bool:
        """An interrupted run with at least one finished epoch can continue from its last checkpoint."""
        return self.status().state is RunState.INTERRUPTED and self.last_checkpoint_path.exists()

    def resume_point(self) -> ResumePoint | None:
        """Where an interrupted run picks up, when it was asked to resume and has a last checkpoint."""
        status = self.raw_status()
        if status.resume_requested and status.resume_point and self.last_checkpoint_path.exists():
            return status.resume_point
        return None

    def truncate_history(self, epochs_done: int) -> None:
        """Drop history rows past the last checkpoint (an epoch that ended as the process was killed)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(row for row in self.history() if int(row["epoch"]) <= epochs_done)
        write_atomic(self.history_path, buffer.getvalue())

    def request_stop(self) -> None:
        self.stop_path.write_text(str(time.time()))

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def read_events(self, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """Events written since byte `offset`, and the offset to pass next time."""
        try:
            with open(self.events_path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except OSError:
            return [], offset
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next read
        events = []
        for line in data[:end].splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events, offset + end

    def history(self) -> list[dict[str, Any]]:
        try:
            with open(self.history_path, newline="") as handle:
                return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]
        except OSError:
            return []

    def splits(self) -> list[tuple[str, str, str]]:
        """`splits.csv` as (split, label, path) rows: which photo went where. Read as CSV, as it was written (a
        path holding a comma is quoted).

        Raises:
            OSError: the run has no `splits.csv` (it has not prepared its photos, or was opened from a file).
        """
        with open(self.splits_path, newline="") as handle:
            return [(row["split"], row["label"], row["path"]) for row in csv.DictReader(handle)]

    def evaluation(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.evaluation_path.read_text())
        except (OSError, ValueError):
            return None

    def dataset(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.dataset_path.read_text())
        except (OSError, ValueError):
            return None


def _number(value: str) -> Any:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number


def list_runs(root: str | os.PathLike | None = None) -> list[RunDirectory]:
    """Every run under `root`, newest first."""
    root = Path(root) if root else runs_root()
    if not root.is_dir():
        return []
    # A name starting with a dot is a run being opened or deleted (`core.sharing.run_files`), not yet or no longer there.
    runs = [RunDirectory(p) for p in root.iterdir() if not p.name.startswith(".") and (p / "config.json").is_file()]
    return sorted(runs, key=lambda r: r.raw_status().created or 0, reverse=True)


def unique_title(root: Path, title: str) -> str:
    """`title`, or with " (2)", " (3)"... when another run already has it (two runs started in the same minute)."""
    taken = {run.about().name for run in list_runs(root)}
    candidate, number = title, 1
    while candidate in taken:
        number += 1
        candidate = f"{title} ({number})"
    return candidate


def distinct_titles(runs: list[RunDirectory]) -> dict[str, str]:
    """Each run's title by id, with its id added where two runs share a title: a picker that shows two
    identical labels cannot tell them apart (Streamlit keeps a choice by its label)."""
    titles = {run.id: run.title() for run in runs}
    counts = Counter(titles.values())
    return {key: f"{title} ({key})" if counts[title] > 1 else title for key, title in titles.items()}
