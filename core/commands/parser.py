"""The CLI's parser, made from declarations: each command once in `COMMANDS`, and `train`'s flags from the
settings' declarations (`core.network.config.SETTINGS`), as the dashboard's widgets are."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from core.base.errors import InputError
from core.base.settings import ConfigError, SettingInfo, get_value, parse_text, with_value
from core.network.config import SETTINGS, AugmentationConfig, RunConfig
from core.network.recipes import RECIPES
from core.results.formats import FORMATS

RUN_DIR = "the run directory (the --out of `train`)"


class CliError(InputError):
    """Bad input: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(message)


def arg(*flags: str, **options: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """One argument of a command, as `add_argument` takes it."""
    return flags, options


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    arguments: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = ()
    description: str | None = None
    settings: bool = False  # --recipe and one flag per declared setting, before `arguments`


# The commands people use, in the order `--help` lists them.
COMMANDS: tuple[Command, ...] = (
    Command(
        "train",
        "fine-tune a backbone on a folder of photos",
        description="Two-phase fine-tuning: a new head on the frozen base, then the top of the base at a low "
        "learning rate. Writes a run directory (config.json, status.json, history.csv, evaluation.json, "
        "model.keras, ...) to --out.",
        settings=True,
        arguments=(
            arg("--no-augmentation", action="store_true", help="turn every augmentation off"),
            arg(
                "--find-lr",
                action="store_true",
                help="do not train: sweep phase 1's learning rate from 1e-6 to 1 over 200 batches, print the loss "
                "curve and a suggested --head-lr, and write lr_find.json to --out",
            ),
            arg("--out", required=True, help="run directory to write (created; must be empty if it exists)"),
        ),
    ),
    Command(
        "scan",
        "check a dataset: classes, counts, files that will be left out",
        arguments=(
            arg("data", help="folder, .zip, 'demo' or 'sample:NAME'"),
            arg("--json", action="store_true", help="print the full report as JSON"),
        ),
    ),
    Command("backbones", "list the backbones"),
    Command(
        "export",
        "make a finished run's model in another format and check it in the runtime that loads it",
        description="Each format is made from the run's kept model without its augmentation, then loaded in its "
        "own runtime and run on the run's test photos. Exit 0: every format passed and the table is printed; "
        "1: a format disagreed with the Keras model (it is not copied); 2: bad input.",
        arguments=(
            arg("run_dir", help=RUN_DIR),
            arg("--format", required=True, choices=[*FORMATS, "all"], help="the format to make, or all"),
            arg(
                "--out",
                help="where to copy what passed: a folder (each format in its own folder, with its MODEL_CARD.md) "
                "or, for one format, a path ending in .zip",
            ),
        ),
    ),
    Command(
        "predict",
        "the top classes of photos, from a run's model in any exported format",
        arguments=(
            arg("run_dir", help=RUN_DIR),
            arg("images", nargs="+", help="photos to classify"),
            arg("--format", default="keras", choices=list(FORMATS), help="an export made with `export`"),
            arg("--top", type=int, default=3, help="how many classes to print per photo"),
        ),
    ),
    Command(
        "explain",
        "what the model looks at: a heatmap per photo (Grad-CAM sharpened by LayerCAM), and its top classes",
        arguments=(
            arg("run_dir", help=RUN_DIR),
            arg("images", nargs="+", help="photos to explain"),
            arg("--out", required=True, help="folder for NAME.png (photo and heatmap) and NAME.npy (heatmap, 0-1)"),
            arg("--top", type=int, default=3, help="how many classes to print per photo"),
        ),
    ),
    Command(
        "review",
        "the training and validation photos probably in the wrong class, unlike the rest, or near-copies",
        description="Confident learning (cleanlab) on answers made without each photo: a classifier on the pretrained "
        "network's features, trained in 5 folds. Writes one row per photo, most suspicious first: "
        "path,given,suggested,quality,issue (issue: label, outlier, near-copy or empty; quality in [0, 1], low: the "
        "given class is probably wrong). Exit 0, or 2 with one line on bad input.",
        arguments=(arg("run_dir", help=RUN_DIR), arg("--out", required=True, help="the CSV file to write")),
    ),
    Command(
        "suggest",
        "the class a run's model suggests for each photo of a folder nobody has sorted yet",
        description="Writes one row per photo: path,suggested,confidence,unlike_all (unlike_all: true when the photo "
        "looks unlike every class the run knows). Grouped by suggested class, the least certain first. Photos that "
        "cannot be read are listed with an empty suggestion. Exit 0, or 2 with one line on bad input.",
        arguments=(
            arg("run_dir", help=RUN_DIR),
            arg("folder", help="a folder of photos (any depth)"),
            arg("--out", required=True, help="the CSV file to write"),
        ),
    ),
    Command(
        "report",
        "a finished run as one HTML file that opens anywhere, offline, and prints cleanly",
        description="Title and notes, the data with sample photos, the network and settings in words, the "
        "training curves, test accuracy with its 95% interval, the confusion matrix, each class in words, the "
        "most confident mistakes, the time it took and how to use the model. Charts stay interactive with no "
        "internet: Plotly's JavaScript and the photos are inside the file.",
        arguments=(arg("run_dir", help=RUN_DIR), arg("--out", required=True, help="the HTML file to write")),
    ),
    Command(
        "runs",
        "list the runs, or compare two or more side by side",
        description="Runs are read from --root.",
        arguments=(
            arg("--root", help="the folder of run directories (default: $STUDIO_RUNS or ./runs)"),
            arg(
                "--compare",
                nargs="+",
                metavar="RUN",
                help="run ids (or run directories) to compare: results, time and size, the settings that differ, "
                "each class",
            ),
        ),
    ),
    Command(
        "pack",
        "keep a finished run as one file (settings, history, results, model; not the photos)",
        arguments=(
            arg("run_dir", help=RUN_DIR),
            arg("--out", required=True, help="the file to write (.studio.zip)"),
        ),
    ),
    Command(
        "unpack",
        "open a run kept with `pack` (or downloaded from the dashboard)",
        arguments=(
            arg("file", help="the .studio.zip"),
            arg("--root", help="where to put the run (default: $STUDIO_RUNS or ./runs)"),
        ),
    ),
    Command(
        "resume",
        "continue an interrupted run (its process was killed) from its last finished epoch",
        arguments=(arg("run_dir", help=RUN_DIR),),
    ),
)


def build_parser(defaults: RunConfig | None = None) -> argparse.ArgumentParser:
    """The CLI; `defaults` (a recipe's config) sets every flag's default, so explicit flags override it."""
    parser = Parser(prog="python -m core", description="Fine-Tune Studio's engine, headless.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        options: dict[str, Any] = {"help": command.help, "description": command.description}
        if command.settings:
            options["formatter_class"] = argparse.ArgumentDefaultsHelpFormatter
        sub = subparsers.add_parser(command.name, **options)
        if command.settings:
            sub.add_argument(
                "--recipe",
                choices=list(RECIPES),
                help="start from a known recipe (" + "; ".join(f"{k}: {r.title}" for k, r in RECIPES.items()) + "); "
                "flags given as well override it",
            )
            add_setting_flags(sub, defaults or RunConfig())
        for flags, arguments in command.arguments:
            sub.add_argument(*flags, **arguments)
    return parser


# The processes the dashboard and the CLI start for themselves (`core.base.processes.spawn_core`), kept out of the
# user's `--help`: `python -m core worker RUN_DIR`, `cluster RUN_DIR`, `task NAME ARGS_JSON OUT`.
INTERNAL_COMMANDS = ("worker", "cluster", "task")


def internal_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m core", description="Fine-Tune Studio's own processes (not for people).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
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
        options: dict[str, Any] = {
            "dest": info.name,
            "help": _flag_help(info),
            "metavar": info.name.split(".")[-1].upper(),
        }
        if info.kind is bool:
            del options["metavar"]
            parser.add_argument(info.flag, action=argparse.BooleanOptionalAction, default=value, **options)
            for old in meta.old_flags:  # a renamed flag keeps working, unlisted (its default is the new one's)
                parser.add_argument(
                    old,
                    action=argparse.BooleanOptionalAction,
                    dest=info.name,
                    default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS,
                )
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


def recipe_defaults(argv: list[str] | None) -> RunConfig | None:
    """The config of `--recipe NAME` when given (its values become the flags' defaults)."""
    from core.network.recipes import RECIPES

    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--recipe")
    known, _ = early.parse_known_args(sys.argv[1:] if argv is None else argv)
    return RECIPES[known.recipe].config() if known.recipe in RECIPES else None
