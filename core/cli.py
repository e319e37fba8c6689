"""`python -m core`: the same engine as the dashboard, headless.

    python -m core train --data PHOTOS --backbone mobilenet_v2_0.5 --out runs/first
    python -m core scan PHOTOS
    python -m core backbones

Exit codes: 0 success (or stopped), 1 training failed, 2 bad input (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from core.backbones import BACKBONES
from core.config import AUTO_SIZE, BEST_NEEDS_VALIDATION, KEEP_MODES, AugmentationConfig, ConfigError, RunConfig


class CliError(Exception):
    """Bad input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(message)


def build_parser(defaults: RunConfig | None = None) -> argparse.ArgumentParser:
    """The CLI; `defaults` (a recipe's config) sets every flag's default, so explicit flags override it."""
    from core.recipes import RECIPES

    defaults = defaults or RunConfig()
    aug = defaults.augmentation
    parser = _Parser(prog="python -m core", description="Fine-Tune Studio's engine, headless.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser(
        "train",
        help="fine-tune a backbone on a folder of photos",
        description="Two-phase fine-tuning: a new head on the frozen base, then the top of the base at a low "
        "learning rate. Writes a run directory (config.json, status.json, history.csv, evaluation.json, "
        "model.keras, ...) to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train.add_argument(
        "--data",
        required=True,
        help="folder of class folders (or train/val/test folders), a .zip, "
        "'demo' for the built-in set, or 'sample:flowers' / 'sample:cats_vs_dogs' to download",
    )
    train.add_argument(
        "--recipe",
        choices=list(RECIPES),
        help="start from a known recipe (" + "; ".join(f"{k}: {r.title}" for k, r in RECIPES.items()) + "); "
        "flags given as well override it",
    )
    train.add_argument("--val-data", help="separate folder of class folders used for validation")
    train.add_argument("--test-data", help="separate folder of class folders used only for the final test")
    train.add_argument(
        "--backbone",
        default=defaults.backbone,
        choices=list(BACKBONES),
        metavar="KEY",
        help=f"pretrained network; one of: {', '.join(BACKBONES)}",
    )
    train.add_argument(
        "--weights",
        default=defaults.weights,
        help="'imagenet' (Keras cache or download), 'none' (random), or a path to a .h5 file",
    )
    train.add_argument(
        "--image-size",
        type=_image_size,
        default=defaults.image_size,
        metavar="N|auto",
        help="images are resized to N x N pixels; auto (0): the network's native size (224 for the MobileNets) "
        "when the photos are at least that large, else its faster default (160 for the MobileNets)",
    )
    train.add_argument("--batch-size", type=int, default=defaults.batch_size, help="images per training step")
    train.add_argument("--head-epochs", type=int, default=defaults.head_epochs, help="phase 1 epochs (base frozen)")
    train.add_argument(
        "--finetune-epochs",
        type=int,
        default=defaults.finetune_epochs,
        help="phase 2 epochs (top of the base unfrozen); 0 skips phase 2",
    )
    train.add_argument("--head-lr", type=float, default=defaults.head_learning_rate, help="phase 1 learning rate")
    train.add_argument(
        "--finetune-lr", type=float, default=defaults.finetune_learning_rate, help="phase 2 learning rate (keep it low)"
    )
    train.add_argument(
        "--optimizer",
        default=defaults.optimizer,
        choices=["adam", "rmsprop", "sgd"],
        help="optimizer for both phases (sgd uses momentum 0.9)",
    )
    train.add_argument(
        "--unfreeze",
        default=defaults.unfreeze,
        help="what phase 2 trains: auto (the backbone's recommended top blocks), none, all, "
        "top:N (last N layers), from:N (all but the first N), block:NAME (from that block on), "
        "layers:I,J (layer indices); "
        "BatchNormalization layers always stay frozen",
    )
    train.add_argument(
        "--pooling",
        default=defaults.pooling,
        choices=["avg", "max", "flatten"],
        help="how the base's feature map becomes a vector",
    )
    train.add_argument(
        "--head-units",
        default=",".join(str(u) for u in defaults.head_units),
        help="hidden Dense layers in the head, e.g. '256' or '1024,256'",
    )
    train.add_argument("--dropout", type=float, default=defaults.dropout, help="dropout before each head layer")
    train.add_argument(
        "--flip",
        default={(False, False): "none", (True, False): "horizontal", (False, True): "vertical", (True, True): "both"}[
            (aug.horizontal_flip, aug.vertical_flip)
        ],
        choices=["none", "horizontal", "vertical", "both"],
        help="random flips during training",
    )
    train.add_argument("--rotation", type=float, default=aug.rotation, help="random rotation, fraction of a turn")
    train.add_argument("--zoom", type=float, default=aug.zoom, help="random zoom, fraction of the image")
    train.add_argument("--translation", type=float, default=aug.translation, help="random shift, fraction of the image")
    train.add_argument("--contrast", type=float, default=aug.contrast, help="random contrast change")
    train.add_argument("--brightness", type=float, default=aug.brightness, help="random brightness change")
    train.add_argument("--no-augmentation", action="store_true", help="turn every augmentation off")
    train.add_argument(
        "--early-stopping",
        type=int,
        default=defaults.early_stopping_patience,
        metavar="PATIENCE",
        help="stop a phase after N epochs without improvement (0: off); see --keep for what is kept",
    )
    train.add_argument(
        "--reduce-lr",
        type=int,
        default=defaults.reduce_lr_patience,
        metavar="PATIENCE",
        help="cut the learning rate after N epochs without improvement (0: off)",
    )
    train.add_argument(
        "--cosine-decay",
        action=argparse.BooleanOptionalAction,
        default=defaults.cosine_decay,
        help="lower each phase's learning rate along a half cosine to near 0 by its last epoch "
        "(instead of --reduce-lr)",
    )
    train.add_argument(
        "--average-weights",
        action=argparse.BooleanOptionalAction,
        default=defaults.average_weights,
        help="validate and keep a moving average of the weights (smoother, often more accurate)",
    )
    train.add_argument(
        "--keep",
        default=defaults.keep,
        choices=list(KEEP_MODES),
        help="what a finished run keeps: auto (best with at least "
        f"{BEST_NEEDS_VALIDATION} validation photos, else final), the final weights, or the most accurate epoch "
        "on validation",
    )
    train.add_argument(
        "--class-weights",
        default=defaults.class_weights,
        choices=["auto", "on", "off"],
        help="weight classes by inverse frequency (auto: only when unbalanced)",
    )
    train.add_argument(
        "--no-feature-cache",
        action="store_true",
        help="run every image through the whole network every epoch (slow; the plain Keras way)",
    )
    train.add_argument(
        "--feature-views",
        type=int,
        default=defaults.feature_views,
        metavar="N",
        help="with augmentation on: copies of each image whose frozen features are cached (the original "
        "and N-1 augmented); each epoch uses one at random",
    )
    train.add_argument(
        "--val-fraction",
        type=float,
        default=defaults.val_fraction,
        help="share of each class held out for validation when the data has no val folder",
    )
    train.add_argument(
        "--test-fraction",
        type=float,
        default=defaults.test_fraction,
        help="share of each class held out for testing when the data has no split",
    )
    train.add_argument("--seed", type=int, default=defaults.seed, help="makes splits and training repeatable")
    train.add_argument("--name", default="", help="a name for the run")
    train.add_argument(
        "--find-lr",
        action="store_true",
        help="do not train: sweep phase 1's learning rate from 1e-6 to 1 over 200 batches, print the loss "
        "curve and a suggested --head-lr, and write lr_find.json to --out",
    )
    train.add_argument("--out", required=True, help="run directory to write (created; must be empty if it exists)")

    scan = commands.add_parser("scan", help="check a dataset: classes, counts, files that will be left out")
    scan.add_argument("data", help="folder, .zip, 'demo' or 'sample:NAME'")
    scan.add_argument("--json", action="store_true", help="print the full report as JSON")

    commands.add_parser("backbones", help="list the backbones")

    resume = commands.add_parser(
        "resume", help="continue an interrupted run (its process was killed) from its last finished epoch"
    )
    resume.add_argument("run_dir", help="the run directory (the --out of `train`)")

    worker = commands.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("run_dir")

    task = commands.add_parser("task", help=argparse.SUPPRESS)
    task.add_argument("name")
    task.add_argument("arguments", help="the task's arguments as JSON")
    task.add_argument("out", help="file to write the JSON result to")
    return parser


def _image_size(text: str) -> int:
    if text.strip().lower() == "auto":
        return AUTO_SIZE
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of pixels or auto, got {text!r}") from None


def config_from_args(args: argparse.Namespace) -> RunConfig:
    flips = {"none": (False, False), "horizontal": (True, False), "vertical": (False, True), "both": (True, True)}
    horizontal, vertical = flips[args.flip]
    augmentation = AugmentationConfig(
        horizontal_flip=horizontal,
        vertical_flip=vertical,
        rotation=args.rotation,
        zoom=args.zoom,
        translation=args.translation,
        contrast=args.contrast,
        brightness=args.brightness,
    )
    if args.no_augmentation:
        augmentation = AugmentationConfig.off()
    try:
        head_units = tuple(int(u) for u in args.head_units.replace(" ", "").split(",") if u)
    except ValueError:
        raise CliError(
            f"--head-units must be whole numbers separated by commas. Received: {args.head_units!r}"
        ) from None
    return RunConfig(
        data=args.data,
        val_data=args.val_data,
        test_data=args.test_data,
        backbone=args.backbone,
        weights=args.weights,
        image_size=args.image_size,
        batch_size=args.batch_size,
        head_epochs=args.head_epochs,
        finetune_epochs=args.finetune_epochs,
        head_learning_rate=args.head_lr,
        finetune_learning_rate=args.finetune_lr,
        optimizer=args.optimizer,
        unfreeze=args.unfreeze,
        pooling=args.pooling,
        head_units=head_units,
        dropout=args.dropout,
        augmentation=augmentation,
        early_stopping_patience=args.early_stopping,
        reduce_lr_patience=args.reduce_lr,
        cosine_decay=args.cosine_decay,
        average_weights=args.average_weights,
        keep=args.keep,
        class_weights=args.class_weights,
        feature_cache=not args.no_feature_cache,
        feature_views=args.feature_views,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        name=args.name,
    ).validate()


def _check_paths(config: RunConfig) -> None:
    for flag, value in (("--data", config.data), ("--val-data", config.val_data), ("--test-data", config.test_data)):
        if value and value != "demo" and not value.startswith("sample:") and not Path(value).exists():
            raise CliError(f"{flag} {value} does not exist")
    if config.weights not in ("imagenet", "none") and not Path(config.weights).is_file():
        raise CliError(f"--weights {config.weights} is not a file (use imagenet, none, or a path to a .h5 file)")


def command_train(args: argparse.Namespace) -> int:
    from core.runs import RunDirectory

    config = config_from_args(args)
    _check_paths(config)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise CliError(f"--out {out} exists and is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    run = RunDirectory(out)
    run.write_config(config)
    run.write_status(state="queued", created=time.time())
    return _finish(run, find_lr=args.find_lr)


def _finish(run, find_lr: bool = False) -> int:
    """Train `run` in this process (or only find a head learning rate) and turn its final state into an exit code."""
    from core.training import train_run

    state = train_run(run, echo=lambda line: print(line, flush=True), find_lr=find_lr)
    status = run.raw_status()
    if state == "failed":
        print(f"error: {status.get('message')}", file=sys.stderr)
        return 2 if status.get("bad_input") else 1
    print(f"Run written to {run.path}")
    return 0


def command_resume(args: argparse.Namespace) -> int:
    from core.runs import RunDirectory

    run = RunDirectory(args.run_dir)
    if not run.config_path.is_file():
        raise CliError(f"{args.run_dir} is not a run directory (it has no config.json)")
    if not run.can_resume():
        raise CliError(f"{run.id} cannot be resumed: it is {run.status().get('state')}, or no epoch had finished")
    run.write_status(resume_requested=True)
    return _finish(run)


def command_scan(args: argparse.Namespace) -> int:
    from core.datasets import resolve_source, scan_dataset

    report = scan_dataset(resolve_source(args.data))
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    print(f"{report.root}  ({'given train/val/test folders' if report.layout == 'split' else 'class folders'})")
    for name, counts in report.counts().items():
        print(f"  {name:<24} " + "  ".join(f"{k}: {v}" for k, v in counts.items()))
    print(f"Formats: {report.formats()}  Sizes: {report.size_summary()}")
    for warning in report.warnings:
        print(f"Warning: {warning}")
    for skipped in report.skipped:
        print(f"Left out {skipped.path}: {skipped.reason}")
    problems = report.problems_for_training()
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 2 if problems else 0


def command_backbones(_: argparse.Namespace) -> int:
    width = shutil.get_terminal_size((100, 20)).columns
    for spec in BACKBONES.values():
        line = f"{spec.key:<20} {spec.params / 1e6:5.1f}M params  {spec.default_size:>3}px (min {spec.min_size})  {spec.hint}"
        print(line[:width])
    return 0


def _recipe_defaults(argv: list[str] | None) -> RunConfig | None:
    """The config of `--recipe NAME` when given (its values become the flags' defaults)."""
    from core.recipes import RECIPES

    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--recipe")
    known, _ = early.parse_known_args(sys.argv[1:] if argv is None else argv)
    return RECIPES[known.recipe].config() if known.recipe in RECIPES else None


def main(argv: list[str] | None = None) -> int:
    from core.datasets import DatasetError
    from core.weights import WeightsUnavailable

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        args = build_parser(_recipe_defaults(argv)).parse_args(argv)
        if args.command == "train":
            return command_train(args)
        if args.command == "scan":
            return command_scan(args)
        if args.command == "backbones":
            return command_backbones(args)
        if args.command == "resume":
            return command_resume(args)
        if args.command == "worker":
            from core.training import run_worker

            return run_worker(args.run_dir)
        if args.command == "task":
            from core.tasks import TASK_NICENESS, run_task

            # Below the web server (which must answer clicks) and above training (which can wait).
            os.nice(TASK_NICENESS)
            return run_task(args.name, json.loads(args.arguments), args.out)
    except (CliError, ConfigError, DatasetError, WeightsUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 2
