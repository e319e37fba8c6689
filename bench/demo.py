"""The default on the built-in demo: test accuracy, mistakes, and time, estimated before and measured after.

For each seed, `python -m core train --data demo` with the shared MobileNetV2 0.5 weights (as
`run.sh` offers them), cold caches. Before the runs, the `speeds` task measures this machine as the
Train page does, and the estimate of each stage is printed beside what each stage really took.

    STUDIO_SHARED=../shared .venv/bin/python bench/demo.py --seeds 42 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.speed import WEIGHTS, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    args = parser.parse_args()
    from core.data.datasets import scan_dataset
    from core.data.sources import resolve_source
    from core.network.config import RunConfig
    from core.training.estimate import planned_seconds, speeds_request

    print(machine())
    with tempfile.TemporaryDirectory() as workspace:
        env = dict(
            os.environ, STUDIO_DATA=f"{workspace}/data", STUDIO_CACHE=f"{workspace}/cache", TF_CPP_MIN_LOG_LEVEL="3"
        )
        os.environ.update(STUDIO_DATA=env["STUDIO_DATA"])
        report = scan_dataset(resolve_source("demo"))
        config = RunConfig(weights=str(WEIGHTS))
        speeds_out = Path(workspace) / "speeds.json"
        task = [
            sys.executable,
            "-m",
            "core",
            "task",
            "speeds",
            json.dumps(speeds_request(config, report)),
            str(speeds_out),
        ]
        subprocess.run(task, env=env, cwd=REPO, check=True, capture_output=True)
        plan = planned_seconds(config, report, json.loads(speeds_out.read_text()))
        print(
            f"Estimated before Start: {sum(plan.values()):.1f} s  " + "  ".join(f"{k} {v:.1f}" for k, v in plan.items())
        )
        results = []
        for seed in args.seeds:
            out = Path(workspace) / f"run-{seed}"
            command = [sys.executable, "-m", "core", "train", "--data", "demo", "--weights", str(WEIGHTS)]
            started = time.perf_counter()
            subprocess.run(
                [*command, "--seed", str(seed), "--out", str(out)], env=env, cwd=REPO, check=True, capture_output=True
            )
            wall = time.perf_counter() - started
            evaluation = json.loads((out / "evaluation.json").read_text())
            stages = json.loads((out / "status.json").read_text())["stage_seconds"]
            results.append((evaluation["accuracy"], len(evaluation["misclassified"]), wall))
            print(
                f"seed {seed:>3}: test accuracy {evaluation['accuracy']:.3f} on {evaluation['count']} photos, "
                f"{len(evaluation['misclassified'])} mistakes, {wall:.1f} s  "
                + "  ".join(f"{k} {v:.1f}" for k, v in stages.items())
            )
        accuracies = [r[0] for r in results]
        print(
            f"mean: test accuracy {statistics.mean(accuracies):.3f} (spread {max(accuracies) - min(accuracies):.3f}), "
            f"{statistics.mean(r[1] for r in results):.1f} mistakes, {statistics.mean(r[2] for r in results):.1f} s"
        )


if __name__ == "__main__":
    main()
