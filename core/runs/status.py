"""A run's status: its state, the stage it is in, its progress, and what it found out.

`status.json` in the run directory holds one `RunStatus`. The worker writes it; pages,
the CLI and the docs read it through this type, so a state or a stage is spelled in one
place. A reader never rewrites it: a run whose worker died reads as `interrupted`
(`RunDirectory.status()` checks the recorded process).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RunState(StrEnum):
    QUEUED = "queued"  # waiting for the machine's training slot
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    STOPPED = "stopped"  # by request; the best checkpoint is kept and evaluated
    FAILED = "failed"  # `message` says what went wrong and what to do
    INTERRUPTED = "interrupted"  # the worker died; only ever read, never written

    @property
    def active(self) -> bool:
        return self in (RunState.QUEUED, RunState.RUNNING)

    @property
    def label(self) -> str:
        """The state in a person's words."""
        return {
            RunState.QUEUED: "Waiting in the queue",
            RunState.RUNNING: "Training",
            RunState.SUCCEEDED: "Finished",
            RunState.STOPPED: "Stopped",
            RunState.FAILED: "Failed",
            RunState.INTERRUPTED: "Interrupted",
        }[self]


# Which weights `model.keras` holds (`RunStatus.kept`), in words.
KEPT_MODEL = {
    "final": "the final model",
    "best": "its most accurate epoch",
    "first": "the first model",
}


def keep_choice(keep: str, validation: int, needed: int) -> str:
    """What the `keep` setting means for a run with `validation` photos: "best", "final" (or "first").
    `auto` picks an epoch only with at least `needed` validation photos; fewer cannot tell two epochs apart."""
    if keep == "auto":
        return "best" if validation >= needed else "final"
    return keep


def keep_rule(keep: str, validation: int, needed: int) -> tuple[str, str]:
    """The rule that will choose between the first model and what fine-tuning makes, as it will really apply:
    the sentence said when the first model is ready, and the reason given if the first turns out better on test
    (`keep`: the setting; `validation`: the run's validation photos; `needed`: how many picking an epoch needs)."""
    if keep_choice(keep, validation, needed) == "best":
        return (
            f"Fine-tuning goes on; at the end, the model that does best on the {validation} validation photos is kept, "
            "this one included.",
            f"on the {validation} validation photos the kept one did at least as well",
        )
    if keep == "auto":
        return (
            f"Fine-tuning goes on, and the final model replaces this one: {validation} validation photos are too few "
            f"to tell two good models apart ({needed} are needed), so the settled, fine-tuned one is kept.",
            f"{validation} validation photos are too few to tell two good models apart, so the fine-tuned one was kept",
        )
    return (
        "Fine-tuning goes on, and the final model replaces this one unless this one does better on validation.",
        "the validation photos did not favour it",
    )


class Stage(StrEnum):
    """Where a running run is, in order."""

    WAITING = "waiting"
    PREPARING = "preparing"  # scanning, splitting and decoding the photos
    FEATURES = "features"  # fast mode: computing the frozen layers' output once
    HEAD = "head"  # phase 1: the new head on the frozen network
    FINETUNE = "finetune"  # phase 2: the top of the network as well
    EVALUATING = "evaluating"  # the kept model on the test photos
    DONE = "done"

    @property
    def phase(self) -> int | None:
        """The training phase (1 or 2) this stage is, if it is one."""
        return {Stage.HEAD: 1, Stage.FINETUNE: 2}.get(self)

    @classmethod
    def of_phase(cls, phase: int) -> Stage:
        return cls.HEAD if phase == 1 else cls.FINETUNE


@dataclass(frozen=True)
class ResumePoint:
    """Where `checkpoints/last.keras` stands: its phase, the epochs done in all, and where that phase began."""

    phase: int
    epochs_done: int
    phase_start: int


@dataclass(frozen=True)
class RunStatus:
    """Everything `status.json` says. Times are Unix seconds."""

    state: RunState = RunState.QUEUED
    stage: Stage = Stage.WAITING
    message: str = ""
    bad_input: bool = False  # a failure caused by the person's input (data, settings, weights)
    created: float | None = None
    started: float | None = None
    finished: float | None = None
    updated: float | None = None
    pid: int | None = None
    pid_started: float | None = None
    queue_position: int | None = None
    # progress within the stage (photos decoded, features computed), and across epochs
    stage_done: int = 0
    stage_total: int = 0
    epoch: int = 0
    epochs_total: int = 0
    phase_epochs: int = 0  # epochs this phase runs (fewer when resumed)
    epochs_before_phase: int = 0  # epochs done when this phase (re)started
    stage_started: float | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)  # time each finished stage took
    estimate: dict[str, float] = field(default_factory=dict)  # seconds each stage was expected to take
    steps_per_epoch: int = 0
    batch_size: int = 0
    last_epoch: dict[str, Any] | None = None
    resume_point: ResumePoint | None = None
    resume_requested: bool = False
    # what the run found out and chose
    image_size: int | None = None
    base_layer: str = ""
    weights: str = ""
    weights_kind: str = ""
    unfreeze: str = ""
    class_names: list[str] = field(default_factory=list)
    images: dict[str, int] = field(default_factory=dict)
    total_params: int = 0
    trainable_params_phase1: int = 0
    trainable_params_phase2: int = 0
    class_weights: bool = False
    feature_mode: str = ""
    phase_seconds: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)  # where it trained: cores, processor, GPUs, TensorFlow
    # the devices, replicas, precision, global batch and learning-rate scale (core.network.distribute.Placement.facts)
    placement: dict[str, Any] = field(default_factory=dict)
    node: dict[str, Any] = field(default_factory=dict)  # a Ray cluster's node that trains it: host and pid
    kept: str | None = None  # "final", "best" or "first": which weights model.keras holds
    # The head-trained model, kept as soon as phase 1 ends: its validation and test accuracy
    first_model: dict[str, Any] = field(default_factory=dict)
    # What phase 2 decided and why (`core.training.phases.finetune_decision`), once it has ended
    finetune_decision: str = ""
    accuracy: float | None = None
    accuracy_split: str | None = None  # "test", or "val" when no photos were kept aside for a test
    suggestion: float | None = None  # the learning-rate finder's

    def updated_with(self, **changes: Any) -> RunStatus:
        """A copy with `changes` (names checked against the fields) and `updated` set to now.

        A change of stage closes the stage before it: the time it took is added to `stage_seconds`.
        """
        now = time.time()
        stage = changes.get("stage", self.stage)
        if stage != self.stage:
            seconds = dict(self.stage_seconds)
            if self.stage_started and self.stage not in (Stage.WAITING, Stage.DONE):
                seconds[str(self.stage)] = round(seconds.get(str(self.stage), 0.0) + now - self.stage_started, 2)
            changes = {"stage_seconds": seconds, "stage_started": now, **changes}
        return dataclasses.replace(self, **changes, updated=now)

    @property
    def phase(self) -> int | None:
        return self.stage.phase

    def kept_in_words(self) -> str:
        """Which model the results are of, as the Evaluate page and the report say it."""
        if self.state.active:
            return "These are the first model's results; the final model's replace them if it does better."
        if self.kept == "first" and self.state in (RunState.FAILED, RunState.INTERRUPTED):
            return (
                f"Fine-tuning did not finish ({self.state.label.lower()}, see the Train page): these are the "
                "first model's results, kept when phase 1 ended."
            )
        if self.kept == "first":
            if self.finetune_decision:
                return f"{self.finetune_decision} The first model (only its new head trained) was kept."
            return (
                "The first model (only its new head trained) was kept: fine-tuning did not do better on the "
                "validation photos."
            )
        kept = f"{KEPT_MODEL[self.kept].capitalize()} was kept." if self.kept in KEPT_MODEL else ""
        return " ".join(filter(None, [self.finetune_decision, kept, self._first_did_better()]))

    def _first_did_better(self) -> str:
        """Said plainly when the first model scored higher on the same test photos than the model kept."""
        first = self.first_model or {}
        earlier, now, count = first.get("accuracy"), self.accuracy, first.get("count")
        if not isinstance(earlier, float) or now is None or not count or earlier <= now or first.get("split") != "test":
            return ""
        photos = round((earlier - now) * count)
        reason = first.get("reason") or "the validation photos did not favour it"
        return (
            f"The first model did better on these test photos ({earlier:.1%} against {now:.1%}: {photos} photo"
            f"{'' if photos == 1 else 's'} of {count}), but test photos never choose the model, and {reason}. "
            "A difference this small is often luck; more photos settle it."
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunStatus:
        """Read a status, tolerating fields it does not know (a newer or older version wrote it)."""
        values = {k: v for k, v in _upgrade(dict(data)).items() if k in _FIELDS}
        try:
            values["state"] = RunState(values.get("state", RunState.QUEUED))
            values["stage"] = Stage(values.get("stage", Stage.WAITING))
        except ValueError:
            values.update(state=RunState.FAILED, stage=Stage.DONE, message="This run's status cannot be read.")
        if isinstance(values.get("resume_point"), dict):
            values["resume_point"] = ResumePoint(**values["resume_point"])
        return cls(**values)


_FIELDS = {f.name for f in dataclasses.fields(RunStatus)}


def _upgrade(values: dict[str, Any]) -> dict[str, Any]:
    """A status written before stages existed: `phase` was 0, 1, 2 or "evaluating"."""
    if "phase" in values and "stage" not in values:
        phase = values.pop("phase")
        final = values.get("state") in ("succeeded", "stopped", "failed")
        values["stage"] = (
            Stage.DONE
            if final
            else {1: Stage.HEAD, 2: Stage.FINETUNE, "evaluating": Stage.EVALUATING}.get(phase, Stage.PREPARING)
        )
    values.pop("prepared", None)
    values.pop("to_prepare", None)
    return values
