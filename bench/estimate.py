"""The time estimate against the real run: before Start, and the time left as the run goes.

For each dataset and recipe, in a fresh workspace (cold caches), this does what the dashboard does:
the `speeds` task measures this machine (in its own process), `planned_seconds` turns that into the estimate shown
before Start, `start_run` starts the worker with it, and the time left is read from the run
directory every half second exactly as the Train page computes it (`RunProgress`). Prints, per
run, the estimate against the actual time, each stage's estimate against its time, the time
left's error at a quarter, half and three quarters of the run, and how often the time left
went up (and said why).

    .venv/bin/python bench/estimate.py                       # demo, hymenoptera, flowers5; default and Quick
    .venv/bin/python bench/estimate.py --datasets demo --recipes quick
    .venv/bin/python bench/estimate.py --datasets flowers2 --recipes studio   # a run where fine-tuning stops early
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.recipes import materialise_split  # noqa: E402
from bench.speed import WEIGHTS, environment, machine, source  # noqa: E402

STAGES = ("preparing", "features", "head", "finetune", "evaluating")


def measured_speeds(request: dict) -> dict:
    """The `speeds` task, in its own fresh process as the dashboard runs it (its start-up time is part of it)."""
    from core.base.tasks import Task, read_result, start_task, task_running

    path = start_task(Task.SPEEDS, request)
    while not path.exists() and task_running(path):
        time.sleep(0.2)
    result = read_result(path)
    if not result or "error" in result:
        raise RuntimeError(f"the speeds task failed: {result}")
    return result


def one_run(dataset: str, recipe_key: str) -> dict:
    from core.data.datasets import scan_dataset
    from core.data.sources import resolve_source
    from core.network.recipes import RECIPES
    from core.runs.queue import start_run
    from core.training.estimate import planned_seconds, speeds_request
    from core.training.monitor import RunProgress

    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        os.environ.update(environment(workspace, STUDIO_WEIGHTS_DIRS=str(WEIGHTS.parent)))
        if dataset == "demo":
            data = "demo"
        else:
            materialise_split(source(dataset), workspace / "split", 42)
            data = str(workspace / "split")
        recipe = RECIPES[recipe_key]
        config = recipe.config().replace(data=data, **recipe.offline)
        report = scan_dataset(resolve_source(data))
        measured = time.perf_counter()
        speeds = measured_speeds(speeds_request(config, report))
        measuring = time.perf_counter() - measured
        planned = planned_seconds(config, report, speeds)
        shortest = sum(planned_seconds(config, report, speeds, shortest=True).values())
        run = start_run(config, estimate=planned)
        started = time.time()
        progress, offset, trace = RunProgress(), 0, []
        while True:
            events, offset = run.read_events(offset)
            progress.update(events)
            status = run.status()
            if not status.state.active:
                break
            now = time.time()
            progress.apply_status(status, now)
            if progress.seconds_left is not None:
                trace.append((now - started, progress.seconds_left, bool(progress.revised)))
            time.sleep(0.5)
        actual = time.time() - started
        raw = run.raw_status()
        errors = {}
        for share in (0.25, 0.5, 0.75):
            at = min(trace, key=lambda point, share=share: abs(point[0] - share * actual), default=None)
            if at is not None:
                errors[share] = at[1] - (actual - at[0])
        rises = sum(1 for before, after in zip(trace, trace[1:], strict=False) if after[1] > before[1] + 1.0)
        said = sum(
            1 for before, after in zip(trace, trace[1:], strict=False) if after[1] > before[1] + 1.0 and after[2]
        )
        decision = raw.finetune_decision
        skipped = decision.startswith("Fine-tuning was skipped")
        stopped = decision.startswith("Fine-tuning stopped after")
        return {
            "state": str(status.state),
            # The page says both: the whole run, and the run where fine-tuning is skipped; the one for the kind of
            # run it turned out to be has to hold. A run that stops part way is judged against the whole run's.
            "estimate": shortest if skipped else sum(planned.values()),
            "full": sum(planned.values()),
            "shortest": shortest,
            "kind": "skipped" if skipped else "stopped early" if stopped else "fine-tuned" if decision else "head only",
            "phase2": sum(1 for row in run.history() if row.get("phase") == 2),
            "actual": actual,
            "measuring": measuring,
            "planned": planned,
            "stages": raw.stage_seconds,
            "errors": errors,
            "rises": rises,
            "said": said,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=["demo", "hymenoptera", "flowers5"])
    parser.add_argument("--recipes", nargs="*", default=["studio", "quick"])
    args = parser.parse_args()
    print(f"Machine: {machine()}")
    rows = []
    for dataset in args.datasets:
        for recipe in args.recipes:
            result = one_run(dataset, recipe)
            rows.append((dataset, recipe, result))
            stages = ", ".join(
                f"{stage} {result['planned'].get(stage, 0):.0f}/{result['stages'].get(stage, 0):.0f}"
                for stage in STAGES
                if result["planned"].get(stage, 0) >= 0.5 or result["stages"].get(stage)
            )
            print(
                f"{dataset:12} {recipe:7} {result['state']:9} {result['kind']} ({result['phase2']} phase-2 epochs), "
                f"estimates: whole {result['full']:.0f} s, shortest {result['shortest']:.0f} s; estimate "
                f"{result['estimate']:6.1f} s, actual "
                f"{result['actual']:6.1f} s ({result['estimate'] / result['actual']:.2f}x); stages estimated/taken: "
                f"{stages}; measuring took {result['measuring']:.1f} s",
                flush=True,
            )
    print()
    print(
        "| set | recipe | kind of run | estimate for it | actual | ratio | time left off by, at 25 / 50 / 75% "
        "| rises (said why) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for dataset, recipe, result in rows:
        off = " / ".join(
            f"{result['errors'][share]:+.0f} s" for share in (0.25, 0.5, 0.75) if share in result["errors"]
        )
        print(
            f"| {dataset} | {recipe} | {result['kind']} | {result['estimate']:.0f} s | {result['actual']:.0f} s | "
            f"{result['estimate'] / result['actual']:.2f} | {off} | {result['rises']} ({result['said']}) |"
        )


if __name__ == "__main__":
    main()
