"""Fine-Tune Studio against the plain Keras recipe: same data, backbone, weights, size and epochs.

For each dataset, both sides get the same seeded train/val/test split (as folders of hard links),
MobileNetV2 0.5 with the shared ImageNet weights at 160 px, 10 head epochs and 10 fine-tune
epochs with the same layers unfrozen (from `block_13_expand`), early stopping off. Each side
runs in its own process, cold (empty caches), for each seed. Prints a table: seconds for phase 1 and phase 2
(Fine-Tune Studio's include computing the cached features), the process's wall time and peak
resident memory, and test accuracy; then the means over seeds and the ratios of the means.

    .venv/bin/python bench/speed.py                     # both datasets
    .venv/bin/python bench/speed.py --datasets flowers5 --epochs 5 --seeds 42
    .venv/bin/python bench/speed.py --scaling           # time per epoch and memory at 1x, 2x, 4x flowers5

`--scaling` trains Fine-Tune Studio alone on flowers5's training split repeated 1, 2 and 4
times, with images and features forced to stream from disk (STUDIO_IN_MEMORY_MB=64).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("STUDIO_SHARED", REPO.parent / "shared"))
WEIGHTS = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
DATASETS = {"hymenoptera": SHARED / "datasets" / "hymenoptera_data", "flowers5": SHARED / "datasets" / "flowers5"}
# Sets made from those: a set where the new head alone is as good as it gets, two of flowers5's classes that differ
# at a glance (2,036 photos; the seeded 70/15/15 split gives it 306 validation photos, enough to judge fine-tuning).
DERIVED = {"flowers2": ("flowers5", ("dandelion", "tulip"))}


def source(name: str) -> Path:
    """The folder of dataset `name`: a shared one, or a derived one made of hard links (once, in the temp folder)."""
    if name in DATASETS:
        return DATASETS[name]
    parent, classes = DERIVED[name]
    folder = Path(tempfile.gettempdir()) / f"studio-bench-{name}"
    if not folder.is_dir():
        making = Path(tempfile.mkdtemp(prefix=f"studio-bench-{name}-"))
        for label in classes:
            (making / label).mkdir()
            for path in sorted((DATASETS[parent] / label).iterdir()):
                try:
                    os.link(path, making / label / path.name)
                except OSError:
                    shutil.copyfile(path, making / label / path.name)
        os.replace(making, folder)
    return folder


def materialise_split(source: Path, target: Path, seed: int, repeat: int = 1) -> dict[str, int]:
    """The tool's own seeded split of `source` (70/15/15, or train/val given) as train/val/test folders."""
    from core.data.datasets import scan_dataset
    from core.data.splits import make_splits

    plan = make_splits(scan_dataset(source), 0.15, 0.15, seed)
    counts = {}
    for split, items in (("train", plan.train), ("val", plan.val), ("test", plan.test)):
        copies = repeat if split == "train" else 1
        for item in items:
            for copy in range(copies):
                link = target / split / item.label / f"{copy}-{Path(item.path).name}"
                link.parent.mkdir(parents=True, exist_ok=True)
                try:  # a hard link (symbolic links out of a dataset are refused by the scan, on purpose)
                    os.link(item.path, link)
                except OSError:
                    shutil.copyfile(item.path, link)
        counts[split] = len(items) * copies
    return counts


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `command`; return (wall seconds, peak resident MB of that process, its stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command[:4])} failed ({process.returncode}):\n{output[-3000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, output


def run_studio(data: Path, out: Path, env: dict, head: int, finetune: int, seed: int, extra=()) -> dict:
    command = [sys.executable, "-m", "core", "train", "--data", str(data), "--weights", str(WEIGHTS)]
    command += ["--image-size", "160", "--head-epochs", str(head), "--finetune-epochs", str(finetune)]
    command += ["--unfreeze", "block:block_13", "--early-stopping", "0", "--seed", str(seed), "--out", str(out)]
    wall, rss, _ = measured(command + list(extra), env)
    status = json.loads((out / "status.json").read_text())
    history = [row for row in csv_rows(out / "history.csv")]
    phase2_epochs = [float(r["seconds"]) for r in history if r["phase"] == "2"]
    return {
        "phase1": status["phase_seconds"].get("1", 0.0),
        "phase2": status["phase_seconds"].get("2", 0.0),
        "wall": wall,
        "rss": rss,
        "accuracy": status["accuracy"],
        "epoch2": sum(phase2_epochs[1:]) / max(len(phase2_epochs) - 1, 1),  # first epoch includes tracing
    }


def run_peer(data: Path, env: dict, head: int, finetune: int, seed: int) -> dict:
    command = [sys.executable, str(REPO / "bench" / "keras_peer.py"), "--data", str(data), "--weights", str(WEIGHTS)]
    command += ["--image-size", "160", "--head-epochs", str(head), "--finetune-epochs", str(finetune)]
    command += ["--unfreeze-from", "block_13_expand", "--seed", str(seed)]
    wall, rss, output = measured(command, env)
    result = json.loads(output.strip().splitlines()[-1])
    return {
        "phase1": result["phase1_seconds"],
        "phase2": result["phase2_seconds"],
        "wall": wall,
        "rss": rss,
        "accuracy": result["test_accuracy"],
    }


def csv_rows(path: Path):
    import csv

    with open(path) as handle:
        yield from csv.DictReader(handle)


def environment(workspace: Path, **extra) -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO), KERAS_HOME=str(workspace / "keras"))
    for name in ("RUNS", "DATA", "CACHE"):
        env[f"STUDIO_{name}"] = str(workspace / name.lower())
    env.update(extra)
    return env


def machine() -> str:
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.platform()}, Python {platform.python_version()}"
    )


def compare(args) -> None:
    print(f"Machine: {machine()}")
    print(
        f"MobileNetV2 0.5 (shared ImageNet weights), 160 px, {args.epochs} head + {args.epochs} fine-tune epochs, "
        f"unfreeze from block_13_expand, early stopping off, seeds {', '.join(map(str, args.seeds))}, cold caches.\n"
    )
    header = (
        f"{'dataset':12} {'side':18} {'seed':>4} {'phase 1 s':>9} {'phase 2 s':>9} {'total s':>8} "
        f"{'peak MB':>8} {'test acc':>8}"
    )
    print(header)
    print("-" * len(header))
    columns = ("phase1", "phase2", "wall", "rss", "accuracy")
    for name in args.datasets:
        results: dict[str, list[dict]] = {"plain Keras": [], "Fine-Tune Studio": []}
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as folder:
                workspace = Path(folder)
                counts = materialise_split(DATASETS[name], workspace / "split", 42)  # one split, as the peer's
                env = environment(workspace)
                results["plain Keras"].append(run_peer(workspace / "split", env, args.epochs, args.epochs, seed))
                results["Fine-Tune Studio"].append(
                    run_studio(workspace / "split", workspace / "run", env, args.epochs, args.epochs, seed)
                )
            for side, rows in results.items():
                r = rows[-1]
                print(
                    f"{name:12} {side:18} {seed:>4} {r['phase1']:9.1f} {r['phase2']:9.1f} {r['wall']:8.1f} "
                    f"{r['rss']:8.0f} {r['accuracy']:8.3f}",
                    flush=True,
                )
        means = {side: {c: sum(r[c] for r in rows) / len(rows) for c in columns} for side, rows in results.items()}
        for side, m in means.items():
            spread = max(r["accuracy"] for r in results[side]) - min(r["accuracy"] for r in results[side])
            print(
                f"{name:12} {side:18} {'mean':>4} {m['phase1']:9.1f} {m['phase2']:9.1f} {m['wall']:8.1f} "
                f"{m['rss']:8.0f} {m['accuracy']:8.3f}  (accuracy spread {spread:.3f})"
            )
        peer, studio = means["plain Keras"], means["Fine-Tune Studio"]
        print(
            f"{name:12} {'speed-up':18} {'':>4} {peer['phase1'] / studio['phase1']:8.1f}x "
            f"{peer['phase2'] / studio['phase2']:8.1f}x {peer['wall'] / studio['wall']:7.1f}x {'':8} "
            f"{100 * (studio['accuracy'] - peer['accuracy']):+7.1f}pt"
        )
        print(f"{'':12} images: {counts}\n")


def scaling(args) -> None:
    print(f"Machine: {machine()}")
    print(
        f"Fine-Tune Studio on flowers5, training split repeated; images and features streamed from disk "
        f"(STUDIO_IN_MEMORY_MB=64); {args.epochs} + {args.epochs} epochs.\n"
    )
    header = f"{'repeat':>6} {'train imgs':>10} {'phase 1 s':>9} {'phase 2 s':>9} {'s/epoch ph2':>11} {'peak MB':>8}"
    print(header)
    print("-" * len(header))
    base = None
    for repeat in (1, 2, 4):
        with tempfile.TemporaryDirectory() as folder:
            workspace = Path(folder)
            counts = materialise_split(DATASETS["flowers5"], workspace / "split", 42, repeat=repeat)
            env = environment(workspace, STUDIO_IN_MEMORY_MB="64")
            r = run_studio(workspace / "split", workspace / "run", env, args.epochs, args.epochs, args.seeds[0])
        base = base or r["epoch2"]
        print(
            f"{repeat:>5}x {counts['train']:>10} {r['phase1']:9.1f} {r['phase2']:9.1f} {r['epoch2']:11.2f} "
            f"{r['rss']:8.0f}   ({r['epoch2'] / base:.2f}x the 1x epoch)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["hymenoptera", "flowers5"])
    parser.add_argument("--epochs", type=int, default=10, help="epochs in each phase")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 1, 2], help="training seeds (the split stays 42)")
    parser.add_argument("--scaling", action="store_true", help="time per epoch and memory at 1x, 2x, 4x flowers5")
    args = parser.parse_args()
    if not WEIGHTS.is_file():
        sys.exit(f"The shared weights are not at {WEIGHTS} (set STUDIO_SHARED to the shared/ folder).")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    (scaling if args.scaling else compare)(args)


if __name__ == "__main__":
    main()
