"""`python -m core`: the same engine as the dashboard, headless.

    python -m core train --data PHOTOS --backbone mobilenet_v2_0.5 --out runs/first
    python -m core scan PHOTOS
    python -m core backbones
    python -m core export runs/first --format tflite --out model.zip
    python -m core predict runs/first photo.jpg --format tflite
    python -m core explain runs/first photo.jpg --out heatmaps
    python -m core report runs/first --out report.html
    python -m core runs --compare first second
    python -m core pack runs/first --out first.studio.zip
    python -m core unpack first.studio.zip

Exit codes: 0 success (or stopped), 1 training failed or an export failed its check, 2 bad input
(one line on stderr).
The `train` flags are made from the settings' declarations in `core/config.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from core.config import SETTINGS, AugmentationConfig, RunConfig
from core.errors import InputError
from core.settings import ConfigError, SettingInfo, get_value, parse_text, with_value


class CliError(InputError):
    """Bad input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(message)


def build_parser(defaults: RunConfig | None = None) -> argparse.ArgumentParser:
    """The CLI; `defaults` (a recipe's config) sets every flag's default, so explicit flags override it."""
    from core.recipes import RECIPES

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
        "--recipe",
        choices=list(RECIPES),
        help="start from a known recipe (" + "; ".join(f"{k}: {r.title}" for k, r in RECIPES.items()) + "); "
        "flags given as well override it",
    )
    add_setting_flags(train, defaults or RunConfig())
    train.add_argument("--no-augmentation", action="store_true", help="turn every augmentation off")
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
    from core.export import FORMATS

    export = commands.add_parser(
        "export",
        help="make a finished run's model in another format and check it in the runtime that loads it",
        description="Each format is made from the run's kept model without its augmentation, then loaded in its "
        "own runtime and run on the run's test photos. Exit 0: every format passed and the table is printed; "
        "1: a format disagreed with the Keras model (it is not copied); 2: bad input.",
    )
    export.add_argument("run_dir", help="the run directory (the --out of `train`)")
    export.add_argument("--format", required=True, choices=[*FORMATS, "all"], help="the format to make, or all")
    export.add_argument(
        "--out",
        help="where to copy what passed: a folder (each format in its own folder, with its MODEL_CARD.md) "
        "or, for one format, a path ending in .zip",
    )
    predict = commands.add_parser(
        "predict", help="the top classes of photos, from a run's model in any exported format"
    )
    predict.add_argument("run_dir", help="the run directory (the --out of `train`)")
    predict.add_argument("images", nargs="+", help="photos to classify")
    predict.add_argument("--format", default="keras", choices=list(FORMATS), help="an export made with `export`")
    predict.add_argument("--top", type=int, default=3, help="how many classes to print per photo")
    explain = commands.add_parser(
        "explain", help="what the model looks at: a Grad-CAM heatmap per photo, and its top classes"
    )
    explain.add_argument("run_dir", help="the run directory (the --out of `train`)")
    explain.add_argument("images", nargs="+", help="photos to explain")
    explain.add_argument(
        "--out", required=True, help="folder for NAME.png (photo and heatmap) and NAME.npy (heatmap, 0-1)"
    )
    explain.add_argument("--top", type=int, default=3, help="how many classes to print per photo")
    report = commands.add_parser(
        "report",
        help="a finished run as one HTML file that opens anywhere, offline, and prints cleanly",
        description="Title and notes, the data with sample photos, the network and settings in words, the "
        "training curves, test accuracy with its 95% interval, the confusion matrix, each class in words, the "
        "most confident mistakes, the time it took and how to use the model. Charts stay interactive with no "
        "internet: Plotly's JavaScript and the photos are inside the file.",
    )
    report.add_argument("run_dir", help="the run directory (the --out of `train`)")
    report.add_argument("--out", required=True, help="the HTML file to write")
    runs = commands.add_parser(
        "runs", help="list the runs, or compare two or more side by side", description="Runs are read from --root."
    )
    runs.add_argument("--root", help="the folder of run directories (default: $STUDIO_RUNS or ./runs)")
    runs.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN",
        help="run ids (or run directories) to compare: results, time and size, the settings that differ, each class",
    )
    pack = commands.add_parser(
        "pack", help="keep a finished run as one file (settings, history, results, model; not the photos)"
    )
    pack.add_argument("run_dir", help="the run directory (the --out of `train`)")
    pack.add_argument("--out", required=True, help="the file to write (.studio.zip)")
    unpack = commands.add_parser("unpack", help="open a run kept with `pack` (or downloaded from the dashboard)")
    unpack.add_argument("file", help="the .studio.zip")
    unpack.add_argument("--root", help="where to put the run (default: $STUDIO_RUNS or ./runs)")
    resume = commands.add_parser(
        "resume", help="continue an interrupted run (its process was killed) from its last finished epoch"
    )
    resume.add_argument("run_dir", help="the run directory (the --out of `train`)")
    return parser


# The processes the dashboard and the CLI start for themselves (`core.processes.spawn_core`), kept out of the
# user's `--help`: `python -m core worker RUN_DIR`, `cluster RUN_DIR`, `task NAME ARGS_JSON OUT`.
INTERNAL_COMMANDS = ("worker", "cluster", "task")


def internal_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="Fine-Tune Studio's own processes (not for people).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("worker").add_argument("run_dir")
    commands.add_parser("cluster").add_argument("run_dir")
    task = commands.add_parser("task")
    task.add_argument("name")
    task.add_argument("arguments", help="the task's arguments as JSON")
    task.add_argument("out", help="file to write the JSON result to")
    return parser


def add_setting_flags(parser: argparse.ArgumentParser, defaults: RunConfig) -> None:
    """One flag per declared setting, its default taken from `defaults`; values stay text until `config_from_args`."""
    for info in SETTINGS.values():
        if info.flag is None:
            continue
        meta = info.declaration
        value = get_value(defaults, info.name)
        options = {"dest": info.name, "help": _flag_help(info), "metavar": info.name.split(".")[-1].upper()}
        if info.kind is bool:
            del options["metavar"]
            parser.add_argument(info.flag, action=argparse.BooleanOptionalAction, default=value, **options)
            continue
        if meta.choices is not None:
            options["choices"] = meta.choices  # a mapping: `in` may accept more than it lists ("--devices 3")
            if len(meta.choices) <= 6:
                del options["metavar"]  # argparse shows the choices themselves
        shown = meta.show(value) if meta.show and value is not None else value
        parser.add_argument(info.flag, default=None if meta.required else shown, required=meta.required, **options)


def _flag_help(info: SettingInfo) -> str:
    meta = info.declaration
    text = meta.help or meta.label
    if meta.low is not None and meta.choices is None and info.kind in (int, float):
        text += f" ({meta.bounds_text()})"
    if meta.choices is not None and len(meta.choices) > 6:
        text += "; one of: " + ", ".join(meta.choices)
    return text.replace("%", "%%")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The validated config the flags describe.

    Raises:
        CliError: a value that cannot be read, or is out of bounds, naming its flag.
    """
    config = RunConfig()
    for info in SETTINGS.values():
        if info.flag is None:
            continue
        raw = getattr(args, info.name)
        try:
            value = raw if raw is None or not isinstance(raw, str) else parse_text(info, raw)
        except ConfigError as error:
            raise CliError(f"{info.flag}: {error}") from None
        config = with_value(config, info.name, value)
    if args.no_augmentation:
        config = config.replace(augmentation=AugmentationConfig.off())
    try:
        return config.validate()
    except ConfigError as error:
        flag = SETTINGS[error.setting].flag if error.setting in SETTINGS else None
        raise CliError(f"{flag}: {error}" if flag else str(error)) from None


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
    run.update_status(created=time.time())
    if args.find_lr:
        from core.lr_finder import find_learning_rate

        return _finish(run, find_learning_rate)
    return _finish(run)


def _finish(run, body=None) -> int:
    """Train `run` in this process (or run `body` on it; with STUDIO_RAY_ADDRESS set, send it to the Ray
    cluster and wait) and turn its final state into an exit code."""
    from core.cluster import cluster_address, supervise
    from core.status import RunState
    from core.training import train_run

    state = (body or (supervise if cluster_address() else train_run))(run, echo=lambda line: print(line, flush=True))
    status = run.raw_status()
    if state is RunState.FAILED:
        print(f"error: {status.message}", file=sys.stderr)
        return 2 if status.bad_input else 1
    if state is RunState.INTERRUPTED:
        print(
            f"error: training ended unexpectedly; continue it with `python -m core resume {run.path}`", file=sys.stderr
        )
        return 1
    print(f"Run written to {run.path}")
    return 0


def command_resume(args: argparse.Namespace) -> int:
    from core.runs import RunDirectory

    run = RunDirectory(args.run_dir)
    if not run.config_path.is_file():
        raise CliError(f"{args.run_dir} is not a run directory (it has no config.json)")
    if not run.can_resume():
        raise CliError(f"{run.id} cannot be resumed: it is {run.status().state}, or no epoch had finished")
    run.update_status(resume_requested=True)
    return _finish(run)


def command_scan(args: argparse.Namespace) -> int:
    from core.datasets import scan_dataset
    from core.sources import resolve_source

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


def _existing_run(path: str):
    from core.runs import RunDirectory

    run = RunDirectory(path)
    if not run.config_path.is_file():
        raise CliError(f"{path} is not a run directory (it has no config.json)")
    return run


def command_export(args: argparse.Namespace) -> int:
    from core.export import FORMATS, export_folder, export_many, zip_path

    run = _existing_run(args.run_dir)
    keys = list(FORMATS) if args.format == "all" else [args.format]
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix == ".zip" and len(keys) > 1:
        raise CliError("--out PATH.zip takes one format; give a folder for --format all")
    results = export_many(run, keys, lambda line: print(line, flush=True))
    print(f"{'format':<26}{'agrees':>8}{'accuracy':>10}{'size':>10}{'ms/photo':>10}  checked with")
    for v in results:
        mark = "" if v.passed else "  FAILED"
        print(
            f"{v.format:<26}{v.agreement:>8.1%}{v.accuracy:>10.1%}{v.size_bytes / 1e6:>7.1f} MB"
            f"{v.latency_ms:>10.2f}  {v.runtime} on {v.photos} photos{mark}"
        )
    passed = [v.format for v in results if v.passed]
    if out is not None and passed:
        if out.suffix == ".zip":
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(zip_path(run, passed[0]), out)
        else:
            for key in passed:
                shutil.copytree(export_folder(run, key), out / key, dirs_exist_ok=True)
        print(f"Copied to {out}")
    failed = [v for v in results if not v.passed]
    if failed:
        print("error: " + " ".join(f"{v.title}: {v.message}" for v in failed), file=sys.stderr)
        return 1
    return 0


def command_predict(args: argparse.Namespace) -> int:
    from core.export import predict_files

    if args.top < 1:
        raise CliError("--top must be 1 or more")
    answers = predict_files(_existing_run(args.run_dir), args.format, args.images, args.top)
    _print_answers(answers)
    return 0 if any("top" in a for a in answers) else 2


def command_explain(args: argparse.Namespace) -> int:
    from core.explain import explain_files

    if args.top < 1:
        raise CliError("--top must be 1 or more")
    run = _existing_run(args.run_dir)
    if not run.model_path.exists():
        raise CliError(f"{run.id} has no model yet: it has to finish (or be stopped after an epoch) first")
    answers = explain_files(run, args.images, args.out, args.top)
    _print_answers(answers)
    return 0 if any("top" in a for a in answers) else 2


def command_report(args: argparse.Namespace) -> int:
    from core.report import ReportError, write_report

    try:
        path = write_report(_existing_run(args.run_dir), args.out)
    except ReportError as error:
        raise CliError(str(error)) from None
    print(f"Report written to {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline)")
    return 0


def _runs_in(root: str | None):
    from core.runs import list_runs, runs_root

    folder = Path(root) if root else runs_root()
    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder of runs")
    return folder, list_runs(folder)


def command_runs(args: argparse.Namespace) -> int:
    from core.compare import comparison_text, runs_frame
    from core.runs import RunDirectory

    folder, runs = _runs_in(args.root)
    if not args.compare:
        if not runs:
            print(f"No runs in {folder}.")
            return 0
        table = runs_frame(runs).drop(columns=["notes", "recipe"])
        table["accuracy"] = table["accuracy"].map(lambda a: "" if a != a or a is None else f"{a:.1%}")
        table["minutes"] = table["minutes"].map(lambda m: "" if m != m or m is None else f"{m:.1f}")
        table["started"] = table["started"].map(lambda t: "" if t is None or t != t else f"{t:%d %b %H:%M}")
        print(table.to_string(index=False))
        return 0
    if len(args.compare) < 2:
        raise CliError("--compare takes two or more runs")
    chosen = []
    for name in args.compare:
        path = folder / name if (folder / name / "config.json").is_file() else Path(name)
        if not (path / "config.json").is_file():
            raise CliError(f"no run called {name!r} in {folder} (see `python -m core runs`)")
        chosen.append(RunDirectory(path))
    print(comparison_text(chosen))
    return 0


def command_pack(args: argparse.Namespace) -> int:
    from core.files import write_atomic
    from core.projects import pack_run

    run = _existing_run(args.run_dir)
    content = pack_run(run)
    write_atomic(Path(args.out), content)
    print(f"{run.title()} kept in {args.out} ({len(content) / 1e6:.1f} MB)")
    return 0


def command_unpack(args: argparse.Namespace) -> int:
    from core.projects import unpack_run
    from core.runs import runs_root

    if not Path(args.file).is_file():
        raise CliError(f"{args.file} does not exist")
    run = unpack_run(args.file, Path(args.root) if args.root else runs_root())
    print(f"Opened {run.title()} as {run.path}")
    return 0


def _print_answers(answers: list[dict]) -> None:
    for answer in answers:
        if "error" in answer:
            print(f"{answer['path']}: left out, {answer['error']}")
        else:
            print(f"{answer['path']}: " + ", ".join(f"{name} {p:.1%}" for name, p in answer["top"]))


def command_backbones(_: argparse.Namespace) -> int:
    from core.backbones import BACKBONES

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


def _internal(args: argparse.Namespace) -> int:
    if args.command == "worker":
        from core.training import run_worker

        return run_worker(args.run_dir)
    if args.command == "cluster":
        from core.cluster import supervise
        from core.runs import RunDirectory
        from core.status import RunState

        return 0 if supervise(RunDirectory(args.run_dir)) in (RunState.SUCCEEDED, RunState.STOPPED) else 1
    from core.task_bodies import TASK_NICENESS, run_task

    os.nice(TASK_NICENESS)
    return run_task(args.name, json.loads(args.arguments), args.out)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        given = sys.argv[1:] if argv is None else argv
        if given and given[0] in INTERNAL_COMMANDS:
            return _internal(internal_parser().parse_args(given))
        args = build_parser(_recipe_defaults(argv)).parse_args(argv)
        commands = {
            "train": command_train,
            "scan": command_scan,
            "backbones": command_backbones,
            "resume": command_resume,
            "export": command_export,
            "predict": command_predict,
            "explain": command_explain,
            "report": command_report,
            "runs": command_runs,
            "pack": command_pack,
            "unpack": command_unpack,
        }
        return commands[args.command](args)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
