"""What a person watching a run wants to know, computed from its status and events."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from core.runs.status import RunState, RunStatus, Stage
from core.training.estimate import phase_pace, seconds_left


@dataclass
class RunProgress:
    """Progress of one run: where it is, how fast it goes, and the curves so far."""

    state: RunState = RunState.QUEUED
    stage: Stage = Stage.WAITING
    epoch: int = 0
    epochs_total: int = 0
    batch: int = 0
    steps: int = 0
    images_per_second: float = 0.0
    seconds_left: float | None = None
    whole_run: bool = False  # seconds_left covers every stage still to come (else only the current phase)
    revised: str = ""  # why the time left went up instead of down, said beside it
    _shown: tuple[float, float, str] | None = None  # the time left last said, when, and in which stage
    fraction: float = 0.0
    batches: list[dict] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    phase_starts: list[int] = field(default_factory=list)

    def update(self, events: list[dict]) -> None:
        """Fold newly read events into the progress."""
        for event in events:
            kind = event.get("type")
            if kind == "batch":
                self.batch = int(event.get("batch", 0))
                self.steps = int(event.get("steps", 0)) or self.steps
                self.epoch = int(event.get("epoch", self.epoch))
                self.images_per_second = float(event.get("images_per_second") or 0.0)
                self.batches.append(
                    {
                        "step": (self.epoch - 1 + self.batch / max(self.steps, 1)),
                        "loss": event.get("loss"),
                        "accuracy": event.get("accuracy"),
                        "phase": event.get("phase"),
                    }
                )
            elif kind == "epoch":
                self.epochs.append(event)
                self.epoch = int(event.get("epoch", self.epoch))
                self.batch = self.steps
            elif kind == "phase_start":
                self.steps = int(event.get("steps", 0)) or self.steps
                self.phase_starts.append(int(event.get("epoch", 0)))
            elif kind == "epoch_start":
                self.epoch = int(event.get("epoch", self.epoch))
                self.batch = 0

    def apply_status(self, status: RunStatus, now: float | None = None) -> None:
        self.state = status.state
        self.stage = status.stage
        self.epochs_total = status.epochs_total or self.epochs_total
        done_epochs = max(self.epoch - 1, 0) + (self.batch / self.steps if self.steps else 0.0)
        if self.state is RunState.SUCCEEDED:
            self.fraction = 1.0
        elif self.epochs_total:
            self.fraction = min(done_epochs / self.epochs_total, 1.0)
        self.seconds_left, self.whole_run = None, False
        if self.state is not RunState.RUNNING:
            return
        if status.estimate:  # every stage still to come, from measured speeds
            self.seconds_left, self.whole_run = seconds_left(status.estimate, status, self.epochs, now), True
            self._steady(now if now is not None else time.time())
            return
        # No estimate (a run started from the CLI): only this phase's own pace can be known.
        per_epoch, finished = phase_pace(self.epochs, self.stage.phase or 0, status.epochs_before_phase)
        if per_epoch is not None and status.phase_epochs:
            self.seconds_left = max(status.phase_epochs - finished, 0) * per_epoch

    def _steady(self, now: float) -> None:
        """Let the time left only count down, unless the run is clearly slower than measured; then say so.

        Small rises (noise in a step's time) keep the countdown; a rise of over 10 s and a quarter is shown,
        with the reason, until the stage ends.
        """
        if self.seconds_left is None:
            return
        if self._shown is not None and self._shown[2] == str(self.stage):
            before, when, _ = self._shown
            expected = max(before - (now - when), 0.0)
            if self.seconds_left > expected + max(10.0, 0.25 * expected):
                self.revised = "revised up: this run is going slower than this machine measured before it started"
            elif self.seconds_left > expected:
                self.seconds_left = expected  # noise: keep counting down
        elif self._shown is not None:
            self.revised = ""  # a new stage: its own estimate, corrected by how the finished stages went
        self._shown = (self.seconds_left, now, str(self.stage))

    def describe(self) -> str:
        """One plain line for the progress bar."""
        left = ""
        if self.seconds_left is not None:
            left = "a few seconds left" if self.seconds_left < 5 else f"about {format_seconds(self.seconds_left)} left"
        if left and not self.whole_run:
            left += " in this phase"
        if left and self.revised:
            left += f" ({self.revised})"
        if self.stage is Stage.EVALUATING:
            return "Training done: checking the model on the photos it has never seen" + (f" · {left}" if left else "")
        if self.stage is Stage.FEATURES:
            text = "Computing what the frozen network sees in each photo (once, then reused every epoch)"
            return text + (f" · {left}" if left else "")
        if self.stage.phase is None:
            return "Preparing the photos" + (f" · {left}" if left else "")
        if not self.batches and self.batch == 0:
            return f"Starting phase {self.stage.phase} (the first batch takes a few seconds)" + (
                f" · {left}" if left else ""
            )
        parts = [f"Phase {self.stage.phase}", f"epoch {self.epoch} of {self.epochs_total}"]
        if self.steps:
            parts.append(f"batch {self.batch} of {self.steps}")
        if left:
            parts.append(left)
        return " · ".join(parts)

    @property
    def has_curves(self) -> bool:
        return bool(self.batches or self.epochs)


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


MEMORISING_EPOCHS = 3  # epochs of getting worse on validation before it is called memorising, not noise


MEMORISING_GAP = 0.15  # right on this much more of the training photos than of the validation photos


def _accuracy_gap(epoch: dict) -> str | None:
    """Plain words when the last epoch was right on far more training photos than validation photos."""
    seen, unseen = epoch.get("accuracy"), epoch.get("val_accuracy")
    if not isinstance(seen, float) or not isinstance(unseen, float) or seen - unseen < MEMORISING_GAP:
        return None
    return (
        f"The model is right on {seen:.0%} of its training photos but only {unseen:.0%} of the validation photos "
        "it does not train on: it has partly memorised its photos rather than learnt what tells the classes apart. "
        "More photos, or more varied ones, help most; the validation score is the one to believe."
    )


def memorising(epochs: list[dict], keeps_best: bool, running: bool) -> str | None:
    """Plain words when the model has started to memorise its photos, and what that means for the kept model.

    Memorising: the last epoch was right on MEMORISING_GAP more of its training photos than of the
    validation photos, or for MEMORISING_EPOCHS epochs in a row the validation loss rose or the
    validation accuracy fell while the loss on the training photos kept falling.
    """
    recent = [e for e in epochs if e.get("val_loss") is not None and e.get("loss") is not None]
    gap = _accuracy_gap(recent[-1]) if recent else None
    if gap is not None:
        return gap
    if len(recent) <= MEMORISING_EPOCHS:
        return None
    window = recent[-MEMORISING_EPOCHS - 1 :]
    pairs = list(zip(window, window[1:], strict=False))
    training_better = all(b["loss"] < a["loss"] for a, b in pairs)
    loss_rose = all(b["val_loss"] > a["val_loss"] for a, b in pairs)
    accuracy_fell = all((b.get("val_accuracy") or 0) < (a.get("val_accuracy") or 0) for a, b in pairs)
    if not training_better or not (loss_rose or accuracy_fell):
        return None
    since = int(window[0]["epoch"])
    said = (
        f"Since epoch {since} the model has kept getting better on its training photos but worse on the "
        "validation photos it does not train on: it has started to memorise its photos instead of learning "
        "what tells the classes apart."
    )
    if keeps_best:
        return said + " The most accurate epoch is what will be kept, so the extra epochs cost only time."
    if running:
        return said + (
            " The final model is what will be kept; pressing Stop now keeps the most accurate epoch so far instead."
        )
    return said + " The final model was kept."
