"""One device against two: the default recipe with the processor split into logical devices.

Each run is a fresh process with cold caches on the seed-42 split (`bench/recipes.py`), with
`STUDIO_CPU_DEVICES` set to each count in turn, so the two-device runs go through
`tf.distribute.MirroredStrategy` exactly as a two-GPU machine would. Prints each run, then per
dataset and device count the mean and spread of test accuracy, the mean wall time, where it went,
and the per-image costs docs/scaling.md turns into what a GPU should give:

- features: seconds per photo-version through the frozen network (fast mode's stored versions);
- phase 2: seconds per photo per fine-tune epoch through the unfrozen top (forward and backward).

    .venv/bin/python bench/scaling.py                                   # hymenoptera, seeds 42 1 2; 1 and 2 devices
    .venv/bin/python bench/scaling.py --datasets flowers5 --seeds 42
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.recipes import run_recipe  # noqa: E402
from bench.speed import DATASETS, WEIGHTS, environment, machine, materialise_split  # noqa: E402

STAGES = ("preparing", "features", "head", "finetune", "evaluating")


def run_once(source: Path, seed: int, devices: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        materialise_split(source, workspace / "split", 42)
        env = environment(workspace, STUDIO_CPU_DEVICES=str(devices))
        out = workspace / "run"
        result = run_recipe("studio", workspace / "split", out, env, seed)
        status = json.loads((out / "status.json").read_text())
        result["placement"] = status.get("placement", {})
        result["images"] = status.get("images", {})
        config = json.loads((out / "config.json").read_text())
        result["views"], result["finetune_epochs"] = config["feature_views"], config["finetune_epochs"]
        return result


def per_image(result: dict) -> tuple[float, float]:
    """Seconds per photo-version through the frozen network, and per photo per phase-2 epoch."""
    images = result["images"]
    versions = images.get("train", 0) * result["views"] + images.get("val", 0)
    features = result["stages"].get("features", 0.0) / max(versions, 1)
    finetune = result["stages"].get("finetune", 0.0) / max(images.get("train", 0) * result["finetune_epochs"], 1)
    return features, finetune


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", choices=sorted(DATASETS), default=["hymenoptera"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not WEIGHTS.is_file():
        sys.exit(f"The shared weights are not at {WEIGHTS} (set STUDIO_SHARED to the shared/ folder).")
    print(f"Machine: {machine()}")
    summaries = []
    for name in args.datasets:
        rows = {}
        for devices in args.devices:
            results = []
            for seed in args.seeds:
                result = run_once(DATASETS[name], seed, devices)
                placement = result["placement"]
                print(
                    f"  {name} {devices} device(s) seed {seed}: {result['accuracy']:.3f} in {result['wall']:.1f} s "
                    f"({placement.get('replicas')} replicas on {', '.join(placement.get('devices', []))}, "
                    f"batch {placement.get('global_batch')})",
                    flush=True,
                )
                results.append(result)
            rows[devices] = results
        summaries.append((name, rows))
    for name, rows in summaries:
        print(f"\n{name}, seeds {', '.join(map(str, args.seeds))}")
        header = (
            f"{'devices':>7} {'mean acc':>8} {'spread':>7} {'mean s':>7} {'ms/version':>10} {'ms/photo-epoch':>14}"
            "  where the time went (mean s)"
        )
        print(header)
        print("-" * len(header))
        for devices, results in rows.items():
            accuracies = [r["accuracy"] for r in results]
            costs = [per_image(r) for r in results]
            stages = ", ".join(
                f"{stage} {statistics.mean(r['stages'].get(stage, 0.0) for r in results):.1f}"
                for stage in STAGES
                if any(stage in r["stages"] for r in results)
            )
            print(
                f"{devices:>7} {statistics.mean(accuracies):8.3f} {max(accuracies) - min(accuracies):7.3f} "
                f"{statistics.mean(r['wall'] for r in results):7.1f} "
                f"{1000 * statistics.mean(c[0] for c in costs):10.2f} {1000 * statistics.mean(c[1] for c in costs):14.2f}"
                f"  {stages}"
            )


if __name__ == "__main__":
    main()
