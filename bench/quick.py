"""Plain Keras against the Quick recipe and the default, on the shared datasets: time and accuracy.

Each run is a fresh process with cold caches on the seed-42 split (`bench/recipes.py`). Prints each
run, then per dataset and recipe the mean and spread of test accuracy, the mean wall time and its
ratio to the plain Keras recipe (`bench/keras_peer.py`: 160 px, 5 + 5 epochs), and for the tool's
runs where the time went (each stage's mean seconds) and what the first model scored.

    .venv/bin/python bench/quick.py                                   # hymenoptera 6 seeds, flowers5 3 seeds
    .venv/bin/python bench/quick.py --datasets hymenoptera --hymenoptera-seeds 42 1 2
    .venv/bin/python bench/quick.py --variant "4 views=--feature-views 4"   # the default with flags changed
    .venv/bin/python bench/quick.py --recipes --variant "quick: 224 px=--image-size 224"
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.recipes import PLAIN, run_once  # noqa: E402
from bench.speed import DATASETS, DERIVED, WEIGHTS, machine, source  # noqa: E402

STAGES = ("preparing", "features", "head", "finetune", "evaluating")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--datasets", nargs="*", choices=sorted([*DATASETS, *DERIVED]), default=["hymenoptera", "flowers5", "flowers2"]
    )
    parser.add_argument("--hymenoptera-seeds", type=int, nargs="+", default=[42, 1, 2, 3, 4, 5])
    parser.add_argument("--flowers5-seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--flowers2-seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument("--recipes", nargs="*", default=[PLAIN, "quick", "studio"], choices=[PLAIN, "quick", "studio"])
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=FLAGS")
    args = parser.parse_args()
    variants = {}
    for text in args.variant:  # "quick: 224 px=--image-size 224" changes the Quick recipe; otherwise the default
        label, _, flags = text.partition("=")
        label = label.strip()
        variants[label if label.startswith(("quick:", "studio:")) else f"studio: {label}"] = shlex.split(flags)
    if not WEIGHTS.is_file():
        sys.exit(f"The shared weights are not at {WEIGHTS} (set STUDIO_SHARED to the shared/ folder).")
    print(f"Machine: {machine()}")
    summaries = []
    for name in args.datasets:
        seeds = getattr(args, f"{name}_seeds")
        rows = {}
        for key in [*args.recipes, *variants]:
            results = []
            for seed in seeds:
                result = run_once(key, source(name), seed, variants)
                results.append(result)
                said = f" {result['decision']}" if result.get("decision") else ""
                if result.get("phase2"):
                    said += (
                        f" Phase 2's validation accuracy by epoch: {' '.join(f'{v:.3f}' for v in result['phase2'])}."
                    )
                print(
                    f"  {name} {key} seed {seed}: {result['accuracy']:.3f} in {result['wall']:.1f} s.{said}", flush=True
                )
            rows[key] = results
        summaries.append((name, seeds, rows))
    for name, seeds, rows in summaries:
        plain = statistics.mean(r["wall"] for r in rows[PLAIN]) if PLAIN in rows else None
        print(f"\n{name}, seeds {', '.join(map(str, seeds))}")
        header = (
            f"{'recipe':28} {'mean acc':>8} {'spread':>7} {'mean s':>7} {'x plain':>8}  where the time went (mean s)"
        )
        print(header)
        print("-" * len(header))
        for key, results in rows.items():
            accuracies = [r["accuracy"] for r in results]
            wall = statistics.mean(r["wall"] for r in results)
            ratio = f"{wall / plain:8.2f}" if plain else f"{'':8}"
            stages = ", ".join(
                f"{stage} {statistics.mean(r['stages'].get(stage, 0.0) for r in results):.1f}"
                for stage in STAGES
                if any(stage in r.get("stages", {}) for r in results)
            )
            firsts = [r["first"]["accuracy"] for r in results if r.get("first")]
            first = f"; first model {statistics.mean(firsts):.3f}" if firsts else ""
            print(
                f"{key:28} {statistics.mean(accuracies):8.3f} {max(accuracies) - min(accuracies):7.3f} "
                f"{wall:7.1f} {ratio}  {stages}{first}"
            )


if __name__ == "__main__":
    main()
