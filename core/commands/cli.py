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
The parser is declared in `core.commands.parser`; the `train` flags come from the settings' declarations.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from core.base.errors import InputError
from core.commands.parser import (
    INTERNAL_COMMANDS,
    CliError,
    build_parser,
    config_from_args,
    internal_parser,
    recipe_defaults,
)
from core.network.config import RunConfig


def _check_paths(config: RunConfig) -> None:
    for flag, value in (("--data", config.data), ("--val-data", config.val_data), ("--test-data", config.test_data)):
        if value and value != "demo" and not value.startswith("sample:") and not Path(value).exists():
            raise CliError(f"{flag} {value} does not exist")
    if config.weights not in ("imagenet", "none") and not Path(config.weights).is_file():
        raise CliError(f"--weights {config.weights} is not a file (use imagenet, none, or a path to a .h5 file)")


def command_train(args: argparse.Namespace) -> int:
    from core.runs.directory import RunDirectory

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
        from core.training.lr_finder import find_learning_rate

        return _finish(run, find_learning_rate)
    return _finish(run)


def _finish(run, body=None) -> int:
    """Train `run` in this process (or run `body` on it; with STUDIO_RAY_ADDRESS set, send it to the Ray
    cluster and wait) and turn its final state into an exit code."""
    from core.runs.status import RunState
    from core.training.cluster import cluster_address, supervise
    from core.training.worker import train_run

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
    from core.runs.directory import RunDirectory

    run = RunDirectory(args.run_dir)
    if not run.config_path.is_file():
        raise CliError(f"{args.run_dir} is not a run directory (it has no config.json)")
    if not run.can_resume():
        raise CliError(f"{run.id} cannot be resumed: it is {run.status().state}, or no epoch had finished")
    run.update_status(resume_requested=True)
    return _finish(run)


def command_scan(args: argparse.Namespace) -> int:
    from core.data.datasets import scan_dataset
    from core.data.sources import resolve_source

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
    from core.runs.directory import RunDirectory

    run = RunDirectory(path)
    if not run.config_path.is_file():
        raise CliError(f"{path} is not a run directory (it has no config.json)")
    return run


def command_export(args: argparse.Namespace) -> int:
    from core.results.export import export_folder, export_many, zip_path
    from core.results.formats import FORMATS

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
    from core.results.export import predict_files

    if args.top < 1:
        raise CliError("--top must be 1 or more")
    answers = predict_files(_existing_run(args.run_dir), args.format, args.images, args.top)
    _print_answers(answers)
    return 0 if any("top" in a for a in answers) else 2


def command_explain(args: argparse.Namespace) -> int:
    from core.results.explain import explain_files

    if args.top < 1:
        raise CliError("--top must be 1 or more")
    run = _existing_run(args.run_dir)
    if not run.model_path.exists():
        raise CliError(f"{run.id} has no model yet: it has to finish (or be stopped after an epoch) first")
    answers = explain_files(run, args.images, args.out, args.top)
    _print_answers(answers)
    return 0 if any("top" in a for a in answers) else 2


def command_review(args: argparse.Namespace) -> int:
    from core.results.review import label_review

    rows, _, judged_by = label_review(_existing_run(args.run_dir))
    table = [(row.path, row.given, row.suggested, f"{row.quality:.4f}", row.issue) for row in rows]
    _write_csv(args.out, ["path", "given", "suggested", "quality", "issue"], table)
    counts = {issue: sum(row.issue == issue for row in rows) for issue in ("label", "outlier", "near-copy")}
    print(
        f"{len(rows)} photos reviewed, judged by {judged_by}: {counts['label']} probably in the wrong class, "
        f"{counts['outlier']} unlike the rest, {counts['near-copy']} near-copies. Written to {args.out}"
    )
    return 0


def command_suggest(args: argparse.Namespace) -> int:
    from core.results.suggest import photos_in, suggest_labels

    run = _existing_run(args.run_dir)
    suggestions = suggest_labels(run, photos_in(args.folder))
    rows = [
        (
            s.path,
            s.suggested,
            f"{s.confidence:.4f}" if not s.error else "",
            str(s.unlike_all).lower() if not s.error else "",
        )
        for s in suggestions
    ]
    _write_csv(args.out, ["path", "suggested", "confidence", "unlike_all"], rows)
    unlike = sum(s.unlike_all for s in suggestions)
    unread = [s for s in suggestions if s.error]
    print(
        f"{len(suggestions) - len(unread)} photos suggested, {unlike} of them unlike every class"
        + (f"; {len(unread)} could not be read" if unread else "")
        + f". Written to {args.out}"
    )
    return 0


def _write_csv(out: str, header: list[str], rows) -> None:
    import csv
    import io

    from core.base.files import write_atomic

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    try:
        write_atomic(Path(out), text.getvalue())
    except OSError as error:
        raise CliError(f"{out} could not be written: {error.strerror or error}") from None


def command_report(args: argparse.Namespace) -> int:
    from core.results.report import ReportError, write_report

    try:
        path = write_report(_existing_run(args.run_dir), args.out)
    except ReportError as error:
        raise CliError(str(error)) from None
    print(f"Report written to {path} ({path.stat().st_size / 1e6:.1f} MB, opens offline)")
    return 0


def _runs_in(root: str | None):
    from core.runs.directory import list_runs, runs_root

    folder = Path(root) if root else runs_root()
    if not folder.is_dir():
        raise CliError(f"{folder} is not a folder of runs")
    return folder, list_runs(folder)


def command_runs(args: argparse.Namespace) -> int:
    from core.results.compare import comparison_text, runs_frame
    from core.runs.directory import RunDirectory

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
    from core.base.files import write_atomic
    from core.sharing.run_files import pack_run

    run = _existing_run(args.run_dir)
    content = pack_run(run)
    write_atomic(Path(args.out), content)
    print(f"{run.title()} kept in {args.out} ({len(content) / 1e6:.1f} MB)")
    return 0


def command_unpack(args: argparse.Namespace) -> int:
    from core.runs.directory import runs_root
    from core.sharing.run_files import unpack_run

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
    from core.network.backbones import BACKBONES

    width = shutil.get_terminal_size((100, 20)).columns
    for spec in BACKBONES.values():
        line = f"{spec.key:<20} {spec.params / 1e6:5.1f}M params  {spec.default_size:>3}px (min {spec.min_size})  {spec.hint}"
        print(line[:width])
    return 0


def _internal(args: argparse.Namespace) -> int:
    if args.command == "worker":
        from core.training.worker import run_worker

        return run_worker(args.run_dir)
    if args.command == "cluster":
        from core.runs.directory import RunDirectory
        from core.runs.status import RunState
        from core.training.cluster import supervise

        return 0 if supervise(RunDirectory(args.run_dir)) in (RunState.SUCCEEDED, RunState.STOPPED) else 1
    from core.commands.task_bodies import TASK_NICENESS, run_task

    os.nice(TASK_NICENESS)
    return run_task(args.name, json.loads(args.arguments), args.out)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        given = sys.argv[1:] if argv is None else argv
        if given and given[0] in INTERNAL_COMMANDS:
            return _internal(internal_parser().parse_args(given))
        args = build_parser(recipe_defaults(argv)).parse_args(argv)
        commands = {
            "train": command_train,
            "scan": command_scan,
            "backbones": command_backbones,
            "resume": command_resume,
            "export": command_export,
            "predict": command_predict,
            "explain": command_explain,
            "review": command_review,
            "suggest": command_suggest,
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
