"""Every recipe and the tool's default, on the shared datasets, over several seeds.

Each recipe runs through `python -m core train --recipe NAME` on the same split: for
hymenoptera, its own val/ folder is the test set and the tool's seeded 15% of train/ the
validation set; for flowers5, a seeded 70/15/15 split. Where a recipe's own backbone has no
weights on this machine it runs on the shared MobileNetV2 0.5 weights at 160 px (the
recipe's `offline` settings). One more row, `plain_keras_guide`, is the Keras guide's recipe
written as plain Keras outside the tool (`bench/keras_peer.py`: 160 px, 5 head epochs at
Adam 1e-3, then the whole base at Adam 1e-5 for 5). Prints each run, then the mean and
spread of test accuracy and the mean wall time per recipe and dataset.

    .venv/bin/python bench/recipes.py                                  # all recipes, both datasets, 3 seeds
    .venv/bin/python bench/recipes.py --recipes studio keras_guide --datasets hymenoptera --seeds 42
    .venv/bin/python bench/recipes.py --recipes studio --variant "no averaging=--no-average-weights"
    .venv/bin/python bench/recipes.py --recipes studio --datasets --per-class 140 286  # flowers5, less data
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.speed import DATASETS, WEIGHTS, environment, machine, materialise_split, measured  # noqa: E402


def run_recipe(key: str, data: Path, out: Path, env: dict, seed: int, flags: list[str] = ()) -> dict:
    from core.network.recipes import get_recipe

    recipe = get_recipe(key)
    command = [sys.executable, "-m", "core", "train", "--recipe", key, "--data", str(data), "--weights", str(WEIGHTS)]
    for name, value in recipe.offline.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    command += [*flags, "--seed", str(seed), "--out", str(out)]
    wall, rss, _ = measured(command, env)
    status = json.loads((out / "status.json").read_text())
    return {
        "accuracy": status["accuracy"],
        "wall": wall,
        "rss": rss,
        "stages": status.get("stage_seconds", {}),
        "first": status.get("first_model", {}),
        "decision": status.get("finetune_decision", ""),
        # Each phase-2 epoch's validation accuracy: how the decision to go on or stop was reached.
        "phase2": [float(row["val_accuracy"]) for row in _history(out) if row["phase"] == "2" and row["val_accuracy"]],
    }


def _history(out: Path) -> list[dict]:
    import csv

    with open(out / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


PLAIN = "plain_keras_guide"


def run_plain_keras_guide(data: Path, env: dict, seed: int) -> dict:
    command = [sys.executable, str(REPO / "bench" / "keras_peer.py"), "--data", str(data), "--weights", str(WEIGHTS)]
    command += ["--image-size", "160", "--head-epochs", "5", "--finetune-epochs", "5", "--unfreeze-from", "all"]
    wall, rss, output = measured(command + ["--seed", str(seed)], env)
    return {"accuracy": json.loads(output.strip().splitlines()[-1])["test_accuracy"], "wall": wall, "rss": rss}


def sample_per_class(source: Path, target: Path, count: int, seed: int = 0) -> Path:
    """`count` photos of each class folder of `source`, a seeded sample, hard-linked under `target`."""
    import random

    for folder in sorted(path for path in source.iterdir() if path.is_dir()):
        files = sorted(path for path in folder.iterdir() if path.is_file())
        for path in random.Random(seed).sample(files, min(count, len(files))):
            link = target / folder.name / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, link)
            except OSError:
                shutil.copyfile(path, link)
    return target


def run_once(key: str, source: Path, seed: int, variants: dict[str, list[str]]) -> dict:
    """One run of recipe (or variant) `key` on the seed-42 split of `source`, in a fresh workspace (cold caches)."""
    from core.network.recipes import RECIPES

    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        materialise_split(source, workspace / "split", 42)
        env = environment(workspace)
        if key == PLAIN:
            return run_plain_keras_guide(workspace / "split", env, seed)
        if key in variants:  # "RECIPE: what changed", the recipe's flags changed (the default's unless named)
            base = key.split(":")[0] if key.split(":")[0] in RECIPES else "studio"
            return run_recipe(base, workspace / "split", workspace / "run", env, seed, variants[key])
        return run_recipe(key, workspace / "split", workspace / "run", env, seed)


def main() -> None:
    from core.network.recipes import RECIPES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [*RECIPES, PLAIN]
    titles = {**{key: recipe.title for key, recipe in RECIPES.items()}, PLAIN: "Keras guide, as plain Keras"}
    parser.add_argument("--recipes", nargs="*", choices=names, default=names)
    parser.add_argument("--datasets", nargs="*", choices=sorted(DATASETS), default=["hymenoptera", "flowers5"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2])
    parser.add_argument(
        "--per-class",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also run on a seeded sample of N photos of each class of flowers5 (before the 70/15/15 split), "
        "to measure how the amount of data matters",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=FLAGS",
        help="also run the default with these CLI flags changed, e.g. 'no cosine=--no-cosine-decay' (repeatable)",
    )
    args = parser.parse_args()
    variants = {}
    for text in args.variant:
        label, _, flags = text.partition("=")
        variants[f"studio: {label.strip()}"] = shlex.split(flags)
    titles.update({label: label for label in variants})
    if not WEIGHTS.is_file():
        sys.exit(f"The shared weights are not at {WEIGHTS} (set STUDIO_SHARED to the shared/ folder).")
    print(f"Machine: {machine()}")
    print(f"Seeds {', '.join(map(str, args.seeds))}; split seed 42; cold caches for every run.\n")
    header = f"{'dataset':12} {'recipe':36} {'mean acc':>8} {'spread':>7} {'mean s':>7} {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="recipes-sample-") as samples:
        sources = {name: DATASETS[name] for name in args.datasets}
        for count in args.per_class:
            sources[f"flowers5:{count}"] = sample_per_class(DATASETS["flowers5"], Path(samples) / str(count), count)
        for name, source in sources.items():
            for key in [*args.recipes, *variants]:
                results = []
                for seed in args.seeds:
                    result = run_once(key, source, seed, variants)
                    results.append(result)
                    print(f"  {name} {key} seed {seed}: {result['accuracy']:.3f} in {result['wall']:.1f} s", flush=True)
                accuracies = [r["accuracy"] for r in results]
                print(
                    f"{name:12} {titles[key]:36} {statistics.mean(accuracies):8.3f} "
                    f"{max(accuracies) - min(accuracies):7.3f} {statistics.mean(r['wall'] for r in results):7.1f} "
                    f"{max(r['rss'] for r in results):8.0f}",
                    flush=True,
                )
            print()


if __name__ == "__main__":
    main()
