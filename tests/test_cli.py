"""The CLI's exit codes and outputs, run as a user would run it."""

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, SHARED, SHARED_V2_05, needs_shared, tiny_config


def cli(*args, cwd=None, timeout=600):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )


TINY = [
    "--backbone",
    "mobilenet_0.25",
    "--weights",
    "none",
    "--image-size",
    "32",
    "--batch-size",
    "8",
    "--head-epochs",
    "1",
    "--finetune-epochs",
    "1",
    "--no-augmentation",
]


@pytest.mark.heavy
def test_train_succeeds_and_writes_the_promised_files(make_dataset, tmp_path):
    data = make_dataset({"red": 6, "green": 6})
    out = tmp_path / "run"
    result = cli("train", "--data", str(data), *TINY, "--out", str(out))
    assert result.returncode == 0, result.stderr
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert {"accuracy", "class_names", "confusion_matrix"} <= set(evaluation)
    header = next(csv.reader(open(out / "history.csv")))
    assert {"phase", "epoch", "seconds", "loss", "val_accuracy"} <= set(header)
    assert "accuracy on" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--data", "/no/such/folder", "--out", "x"], "does not exist"),
        (["train", "--data", "demo", "--backbone", "alexnet", "--out", "x"], "invalid choice"),
        (
            ["train", "--data", "demo", "--image-size", "8", "--out", "x"],
            "--image-size: Image size (pixels) must be 16",
        ),
        (["train", "--data", "demo", "--backbone", "xception", "--image-size", "64", "--out", "x"], "minimum of 71"),
        (
            ["train", "--data", "demo", "--head-epochs", "0", "--finetune-epochs", "0", "--out", "x"],
            "nothing would train",
        ),
        (["train", "--data", "demo", "--head-lr", "0", "--out", "x"], "--head-lr: Head learning rate must be above 0"),
        (["train", "--data", "demo", "--finetune-lr", "10", "--out", "x"], "--finetune-lr: Fine-tune learning rate"),
        (["train", "--data", "demo", "--unfreeze", "half", "--out", "x"], "--unfreeze: An unfreeze plan must be"),
        (["train", "--data", "demo", "--weights", "/no/w.h5", "--out", "x"], "not a file"),
        (["train", "--data", "demo"], "--out"),
        (["train", "--data", "demo", "--head-units", "a,b", "--out", "x"], "--head-units: Hidden layers"),
        (["train", "--data", "demo", "--rotation", "270", "--out", "x"], "--rotation: Rotate (degrees, either way)"),
        (
            ["train", "--data", "demo", "--head-epochs", "two", "--out", "x"],
            "--head-epochs: Head epochs must be a whole",
        ),
        (["frobnicate"], "invalid choice"),
        (["review", "no-such-run", "--out", "r.csv"], "not a run directory"),
        (["review", "--out", "r.csv"], "run_dir"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, monkeypatch, capsys):
    """Each refused before anything is trained or imported: in this process, as `python -m core` runs it."""
    from core.commands.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_review_of_a_run_without_a_model_exits_2_with_one_line(tmp_path, capsys):
    from core.commands.cli import main
    from core.runs.directory import RunDirectory

    run = RunDirectory.create(tmp_path / "runs", tiny_config("demo"), run_id="unfinished")
    assert main(["review", str(run.path), "--out", str(tmp_path / "review.csv")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert (
        lines == ["error: unfinished has no model yet: it has to finish first."]
        and not (tmp_path / "review.csv").exists()
    )


@pytest.mark.heavy
def test_one_class_dataset_exits_2(make_dataset, tmp_path):
    result = cli("train", "--data", str(make_dataset({"red": 5})), *TINY, "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: A classifier needs at least 2 classes")


@pytest.mark.heavy
def test_out_must_be_new_or_empty(make_dataset, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    result = cli("train", "--data", str(make_dataset({"red": 3, "green": 3})), "--out", str(tmp_path / "used"))
    assert result.returncode == 2 and "not empty" in result.stderr


@pytest.mark.heavy
def test_help_explains_every_flag():
    result = cli("train", "--help", timeout=60)
    assert result.returncode == 0
    for flag in (
        "--data",
        "--val-data",
        "--test-data",
        "--backbone",
        "--weights",
        "--image-size",
        "--batch-size",
        "--head-epochs",
        "--finetune-epochs",
        "--unfreeze",
        "--seed",
        "--out",
        "--optimizer",
        "--no-fast-mode",
        "--feature-views",
        "--flip",
        "--rotation",
        "--reduce-lr",
    ):
        assert flag in result.stdout


@pytest.mark.heavy
def test_scan_reports_and_exits_by_usability(make_dataset, tmp_path):
    data = make_dataset({"red": 3, "green": 3})
    (data / "red" / "x.txt").write_text("x")
    result = cli("scan", str(data), timeout=60)
    assert result.returncode == 0 and "Left out" in result.stdout and "red" in result.stdout
    assert cli("scan", str(make_dataset({"blue": 2}, root=tmp_path / "one")), timeout=60).returncode == 2


@pytest.mark.heavy
@pytest.mark.real
@needs_shared
def test_real_hymenoptera_reaches_88_percent(tmp_path):
    """The issue's bar: the CLI's defaults on real photos with the shared MobileNetV2 0.5 weights."""
    out = tmp_path / "hymenoptera"
    result = cli(
        "train",
        "--data",
        str(SHARED / "datasets" / "hymenoptera_data"),
        "--backbone",
        "mobilenet_v2_0.5",
        "--weights",
        str(SHARED_V2_05),
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["class_names"] == ["ants", "bees"] and evaluation["count"] == 153
    assert evaluation["accuracy"] >= 0.88, evaluation["accuracy"]
    status = json.loads((out / "status.json").read_text())
    assert status["image_size"] == 224 and status["kept"] == "final"  # 375 px photos; 36 validation photos
    skipped = json.loads((out / "dataset.json").read_text())["skipped"]
    assert [os.path.basename(s["path"]) for s in skipped] == ["imageNotFound.gif"]


@pytest.mark.heavy
def test_resume_refuses_what_cannot_resume(tmp_path):
    result = cli("resume", str(tmp_path), timeout=60)
    assert result.returncode == 2 and "not a run directory" in result.stderr
    from core.runs.directory import RunDirectory
    from core.runs.status import RunState
    from tests.conftest import tiny_config

    run = RunDirectory.create(tmp_path / "runs", tiny_config("demo"), run_id="done")
    run.update_status(state=RunState.SUCCEEDED)
    result = cli("resume", str(run.path), timeout=60)
    assert result.returncode == 2 and "cannot be resumed: it is succeeded" in result.stderr


@pytest.mark.heavy
def test_predict_with_a_model_holding_code_exits_2_with_one_line(make_dataset, tmp_path):
    """A run whose model.keras carries a Lambda layer (a model file from someone else): refused, in one line."""
    import keras

    from tests.conftest import recorded_run

    photos = make_dataset({"red": 3, "green": 3})
    run = recorded_run(tmp_path / "runs", "lambda-run", photos)
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(2, activation="softmax")(
        keras.layers.Lambda(lambda x: x * 2)(keras.layers.GlobalAveragePooling2D()(inputs))
    )
    keras.Model(inputs, outputs).save(run.model_path)
    result = cli("predict", str(run.path), str(next(photos.rglob("*.png"))), timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr  # TensorFlow's own start-up lines may come first
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: The model model.keras was not loaded: it holds code"), result.stderr


def test_help_lists_the_commands_people_use_and_not_the_internal_ones(capsys):
    """`worker`, `cluster` and `task` are the studio's own processes: callable, never offered in `--help`."""
    from core.commands.parser import INTERNAL_COMMANDS, build_parser, internal_parser

    text = build_parser().format_help()
    for command in ("train", "scan", "export", "predict", "report", "runs", "pack", "unpack", "resume"):
        assert command in text
    for command in INTERNAL_COMMANDS:
        assert command not in text, command
    assert "SUPPRESS" not in text
    assert internal_parser().parse_args(["task", "speeds", "{}", "out.json"]).name == "speeds"
    assert internal_parser().parse_args(["worker", "runs/x"]).run_dir == "runs/x"


def test_a_renamed_flag_still_works_and_only_the_new_name_is_offered(capsys):
    from core.commands.parser import build_parser, config_from_args

    parser = build_parser()
    train = ["train", "--data", "demo", "--out", "runs"]
    assert config_from_args(parser.parse_args(train)).fast_mode is True
    assert config_from_args(parser.parse_args([*train, "--no-fast-mode"])).fast_mode is False
    assert (
        config_from_args(parser.parse_args([*train, "--no-feature-cache"])).fast_mode is False
    )  # fast mode's old name
    assert config_from_args(parser.parse_args([*train, "--no-fast-mode", "--feature-cache"])).fast_mode is True
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    text = capsys.readouterr().out
    assert "--no-fast-mode" in text and "feature-cache" not in text


def test_the_package_metadata_names_what_exists():
    """`pip install -e .` installs the CLI as `fine-tune-studio`: its entry point, packages and files exist."""
    import importlib
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    module, function = project["project"]["scripts"]["fine-tune-studio"].split(":")
    assert callable(getattr(importlib.import_module(module), function))
    setuptools = project["tool"]["setuptools"]
    from core import LAYERS

    assert setuptools["packages"]["find"]["include"] == ["core", "core.*", "app_pages"]
    for package in LAYERS:
        assert (REPO / "core" / package / "__init__.py").is_file(), package
    for package, patterns in setuptools["package-data"].items():
        assert all(list((REPO / package.replace(".", "/")).glob(p)) for p in patterns), package
    for name in setuptools["py-modules"]:
        assert (REPO / f"{name}.py").is_file(), name
    dynamic = setuptools["dynamic"]
    for path in [*dynamic["dependencies"]["file"], *dynamic["optional-dependencies"]["cluster"]["file"]]:
        assert (REPO / path).is_file(), path
    assert (REPO / "LICENSE").read_text().lstrip().startswith("Apache License")
