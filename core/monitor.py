"""What a person watching a run wants to know, computed from its status and events."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.status import RunState, RunStatus, Stage


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

    def apply_status(self, status: RunStatus) -> None:
        self.state = status.state
        self.stage = status.stage
        self.epochs_total = status.epochs_total or self.epochs_total
        done_epochs = max(self.epoch - 1, 0) + (self.batch / self.steps if self.steps else 0.0)
        if self.state is RunState.SUCCEEDED:
            self.fraction = 1.0
        elif self.epochs_total:
            self.fraction = min(done_epochs / self.epochs_total, 1.0)
        seconds_per_epoch = [float(e["seconds"]) for e in self.epochs[-3:] if e.get("seconds")]
        if self.state is RunState.RUNNING and seconds_per_epoch and self.epochs_total:
            remaining = max(self.epochs_total - done_epochs, 0.0)
            self.seconds_left = remaining * sum(seconds_per_epoch) / len(seconds_per_epoch)
        else:
            self.seconds_left = None

    def describe(self) -> str:
        """One plain line for the progress bar."""
        if self.stage is Stage.EVALUATING:
            return "Training done: checking the model on the photos it has never seen"
        if self.stage is Stage.FEATURES:
            return "Computing what the frozen network sees in each photo (once, then reused every epoch)"
        if self.stage.phase is None:
            return "Preparing the photos"
        if not self.batches and self.batch == 0:
            return f"Starting phase {self.stage.phase} (the first batch takes a few seconds)"
        parts = [f"Phase {self.stage.phase}", f"epoch {self.epoch} of {self.epochs_total}"]
        if self.steps:
            parts.append(f"batch {self.batch} of {self.steps}")
        if self.images_per_second:
            parts.append(f"{self.images_per_second:.0f} images/s")
        if self.seconds_left is not None:
            parts.append(f"about {format_seconds(self.seconds_left)} left")
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
