"""Preparing a run's photos: scan and split them, decode them once, and adopt the measured time estimate."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass

from core.base.files import write_atomic
from core.data.pipeline import LabelledImages
from core.network.config import AUTO_SIZE, RunConfig
from core.runs.directory import RunDirectory, run_title
from core.training.failures import Echo, RunFailed, RunStopped
from core.training.preflight import planned_image_size, typical_side_words


@dataclass
class Prepared:
    """The photos, decoded: `config` has the image size resolved (never `auto`)."""

    config: RunConfig
    class_names: list[str]
    data: dict[str, LabelledImages]
    report: object = None  # the scan (core.data.datasets.DatasetReport)


def prepare(run: RunDirectory, config: RunConfig, echo: Echo) -> Prepared:
    """Scan the photos, split them, choose the image size and decode every photo once.

    Writes `dataset.json` and `splits.csv`. Raises RunFailed for data that cannot train,
    RunStopped when Stop is pressed while decoding.
    """
    from core.data.pipeline import decode_splits
    from core.data.sources import load_dataset
    from core.data.splits import make_splits

    report = load_dataset(config.data, config.val_data, config.test_data)
    write_atomic(run.dataset_path, json.dumps(report.to_dict()))
    if not run.about().name:  # named from the start when the dashboard created it; the CLI's, by --name or its photos
        created = run.raw_status().created or time.time()
        run.set_about(name=config.name or run_title(config, report.class_names, created))
    problems = report.problems_for_training()
    if problems:
        raise RunFailed(problems[0], bad_input=True)
    plan = make_splits(report, config.val_fraction, config.test_fraction, config.seed)
    for note in plan.notes + report.warnings:
        echo(note)
    if report.skipped:
        echo(f"{len(report.skipped)} file(s) left out; dataset.json lists each with the reason.")
        for reason, count in Counter(entry.reason for entry in report.skipped).most_common(10):
            echo(f"  {count} x {reason}")
    if not plan.train:
        raise RunFailed("There are no training images after the split.", bad_input=True)
    if config.image_size == AUTO_SIZE:
        config = config.replace(image_size=planned_image_size(config, report))
        echo(f"Image size {config.image_size} px, chosen from the photos ({typical_side_words(report)}).")
    run.update_status(image_size=config.image_size)

    started, last_update = time.time(), [0.0]

    def progress(done: int, total: int) -> bool:
        if run.stop_requested():
            return False
        if time.time() - last_update[0] > 0.5 or done == total:
            last_update[0] = time.time()
            run.update_status(message=f"Preparing the images ({done} of {total})", stage_done=done, stage_total=total)
        return True

    try:
        data = decode_splits(plan, config.image_size, progress=progress, echo=echo)
    except InterruptedError:
        raise RunStopped() from None
    echo(
        f"Prepared {sum(len(d.paths) for d in data.values())} images at {config.image_size} px in {time.time() - started:.1f} s."
    )
    write_atomic(run.splits_path, plan.to_csv(used={p for d in data.values() for p in d.paths}))
    adopt_estimate(run, run.config(), report)
    return Prepared(config, plan.class_names, data, report)


def adopt_estimate(run: RunDirectory, config: RunConfig, report) -> None:
    """A run started before its speeds were measured takes the estimate as soon as they are (the
    dashboard's `speeds` task caches them), so its time left covers every stage."""
    from core.base.tasks import Task, read_result, result_path
    from core.training.estimate import planned_seconds, speeds_request

    if run.raw_status().estimate or report is None:
        return
    speeds = read_result(result_path(Task.SPEEDS, speeds_request(config, report)))
    if speeds and "error" not in speeds:
        run.update_status(estimate=planned_seconds(config, report, speeds))
