"""Before Start: everything already known to stop a run, in plain words, with the way out.

A run that would fail on its data, its settings or its weights is not started: the Train page
shows these blockers instead of a Start button that leads to a failure ten seconds later.
Server details (file names, folders) go in `details`, for whoever administers the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.base.processes import NO_RAY, RAY_ADDRESS_ENV, cluster_address, ray_missing
from core.base.settings import ConfigError
from core.data.datasets import DatasetReport
from core.network.backbones import BACKBONES, BackboneSpec
from core.network.config import AUTO_SIZE, SETTINGS, RunConfig
from core.network.weights import find_local_imagenet, keras_models_dir

PAGE_NAMES = {"data": "Data", "model": "Model", "train": "Train"}


@dataclass(frozen=True)
class Blocker:
    """One reason a run cannot start.

    Attributes:
        problem: what cannot work, in a person's words.
        fix: what to do about it, and on which page.
        page: where it is fixed ("data", "model" or "train").
        details: for administrators: files and folders on the server.
    """

    problem: str
    fix: str
    page: str
    details: str = ""


def planned_image_size(config: RunConfig, report: DatasetReport | None) -> int:
    """The image size a run of `config` will use (`auto` is chosen from the photos)."""
    spec = BACKBONES[config.backbone]
    if config.image_size != AUTO_SIZE:
        return config.image_size
    return spec.auto_image_size(report.typical_side()) if report and report.items else spec.default_size


def typical_side_words(report: DatasetReport) -> str:
    return f"typically {report.typical_side()} px on their shorter side"


def start_blockers(
    config: RunConfig, report: DatasetReport | None, data_error: str | None, downloads_possible: bool
) -> list[Blocker]:
    """Every reason known now that a run of `config` on these photos would fail; empty when it can start.

    Args:
        report: the scan of the chosen photos (None when they could not be read).
        data_error: why the photos could not be read, if they could not.
        downloads_possible: whether Keras could download ImageNet weights from here.
    """
    blockers = []
    if data_error:
        blockers.append(Blocker(data_error, "Choose other photos on the Data page.", "data"))
    elif report is not None:
        fix = "Choose other photos on the Data page, or add the missing class folders to these."
        blockers += [Blocker(problem, fix, "data") for problem in report.problems_for_training()]
    try:
        config.validate()
    except ConfigError as error:
        page = SETTINGS[error.setting].declaration.page if error.setting in SETTINGS else "train"
        blockers.append(Blocker(str(error), f"Change it on the {PAGE_NAMES[page]} page.", page))
        return blockers
    blockers += weights_blockers(config, planned_image_size(config, report), downloads_possible)
    if ray_missing():
        blockers.append(Blocker(*NO_RAY, "train", details=f"{RAY_ADDRESS_ENV}={cluster_address()}"))
    return blockers


def weights_blockers(config: RunConfig, image_size: int, downloads_possible: bool) -> list[Blocker]:
    """The starting weights: a file that is not there, or ImageNet weights neither here nor downloadable."""
    spec = BACKBONES[config.backbone]
    if config.weights == "none":
        return []
    if config.weights != "imagenet":
        if Path(config.weights).is_file():
            return []
        return [
            Blocker(
                f"The weights file {Path(config.weights).name} is not on the server.",
                "Choose ImageNet weights or another file on the Model page.",
                "model",
                details=f"Looked for {config.weights}.",
            )
        ]
    if downloads_possible or find_local_imagenet(spec, image_size):
        return []
    ready = [s.label for s in ready_networks(image_size)]
    choose = f"Choose a network that is ready on this machine ({', '.join(ready)})" if ready else "Upload"
    return [
        Blocker(
            f"{spec.label} needs its ImageNet weights, which are not on this machine, and this machine cannot "
            "download them.",
            f"{choose} on the Model page, or upload the weights file for {spec.label} there.",
            "model",
            details=missing_weights_details(spec, image_size),
        )
    ]


def ready_networks(image_size: int) -> list[BackboneSpec]:
    """The networks whose ImageNet weights are on this machine (usable at `image_size`)."""
    return [spec for spec in BACKBONES.values() if find_local_imagenet(spec, image_size)]


def missing_weights_details(spec: BackboneSpec, image_size: int) -> str:
    """Where the weights file goes, for whoever looks after the server."""
    return (
        f"Keras looks for {spec.weights_filename(image_size)} (or the same file saved for another input size) in "
        f"{keras_models_dir()}; folders listed in STUDIO_WEIGHTS_DIRS and ./weights are searched too. With internet, "
        "Keras downloads it from storage.googleapis.com when a run starts."
    )
