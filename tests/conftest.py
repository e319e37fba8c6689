"""Shared fixtures: an isolated workspace per test and generators for tiny image datasets."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.sharing import access
from tests.waiting import wait_until  # noqa: F401  (shared by the tests)

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    return Path(os.environ.get("STUDIO_SHARED", REPO.parent / "shared"))


SHARED = shared_dir()
SHARED_REASON = f"real data not found at {SHARED} (set STUDIO_SHARED to the shared/ folder)"
needs_shared = pytest.mark.skipif(not (SHARED / "datasets").is_dir(), reason=SHARED_REASON)
# Browser flows that train the default network through the pages need its ImageNet weights, which this
# machine cannot download: they come from ../shared/weights (`_server_env` points the dashboard there).
needs_shared_weights = pytest.mark.skipif(
    not (SHARED / "weights").is_dir(),
    reason=f"the default network's ImageNet weights are not at {SHARED / 'weights'} (set STUDIO_SHARED)",
)
SHARED_V2_05 = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"


# --- the fast tier and child processes ------------------------------------------------------------------

HEAVY_REASON = "mark it @pytest.mark.heavy: the fast tier (./test.sh --fast) starts no process and trains no model"


def pytest_addoption(parser):
    parser.addoption(
        "--fast",
        action="store_true",
        help="only the tests that start no process, train no model and open no browser (./test.sh --fast)",
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--fast"):
        return
    heavy = [item for item in items if item.get_closest_marker("heavy") or item.get_closest_marker("browser")]
    if heavy:
        config.hook.pytest_deselected(items=heavy)
        items[:] = [item for item in items if item not in set(heavy)]


@pytest.fixture(scope="session", autouse=True)
def _fast_tier_holds(request):
    """In the fast tier, a test (or a fixture it uses) that starts a process or trains a model fails, saying so."""
    if not request.config.getoption("--fast"):
        yield
        return
    import keras

    def refuse(what: str):
        def refused(*args, **kwargs):
            raise AssertionError(f"This test or its fixture {what}; {HEAVY_REASON}")

        return refused

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "__init__", refuse("starts a process"))
        patch.setattr(keras.Model, "fit", refuse("trains a model"))
        yield


@pytest.fixture(autouse=True)
def _no_process_left_behind(request):
    """A test that leaves a child process running fails, naming it (the process is ended)."""
    import psutil

    me = psutil.Process()
    before = {child.pid for child in me.children(recursive=True)}
    yield
    left = [child for child in me.children(recursive=True) if child.pid not in before]
    _, alive = psutil.wait_procs(left, timeout=15)  # a process told to stop may take a moment to go
    alive = [process for process in alive if _running(process)]
    if not alive:
        return
    names = []
    for process in alive:
        try:
            names.append(" ".join(process.cmdline())[:160] or process.name())
            process.kill()
        except psutil.Error:
            continue
    if names:
        pytest.fail(f"{request.node.nodeid} left {len(names)} process(es) running: " + "; ".join(names), False)


def _running(process) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture(autouse=True)
def isolated_workspace(tmp_path_factory, monkeypatch):
    """Every test gets its own data, cache, runs and Keras home, so nothing leaks between tests."""
    root = tmp_path_factory.mktemp("workspace")
    for name, sub in (
        ("STUDIO_DATA", "data"),
        ("STUDIO_RUNS", "runs"),
        ("STUDIO_CACHE", "cache"),
        ("KERAS_HOME", "keras"),
    ):
        monkeypatch.setenv(name, str(root / sub))
    monkeypatch.setenv("STUDIO_WEIGHTS_DIRS", "")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.delenv("STUDIO_OWNER_ADDRESSES", raising=False)
    # No test inherits another's wrong guesses.
    monkeypatch.setattr("core.sharing.access.LIMITER", access.GuessLimiter())
    return root


def write_image(path: Path, colour, size: int = 32, fmt: str | None = None, mode: str = "RGB") -> Path:
    """A small image with a coloured square on noise, so classes differ but are not trivial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    pixels = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
    quarter = size // 4
    pixels[quarter : 3 * quarter, quarter : 3 * quarter] = colour
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    image.save(path, format=fmt)
    return path


CLASS_COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (40, 60, 230)}


def make_photos(root: Path, counts: dict[str, int], size: int = 32) -> Path:
    """A folder of class folders of `size` px PNGs, `counts` photos per class."""
    for label, count in counts.items():
        colour = CLASS_COLOURS.get(label, (200, 200, 0))
        for k in range(count):
            write_image(root / label / f"{label}_{k:02d}.png", colour, size=size)
    return root


@pytest.fixture
def make_dataset(tmp_path):
    """make_dataset({"red": 6, "green": 6}) -> folder of class folders of 32 px PNGs (in the test's folder)."""

    def make(counts: dict[str, int], root: Path | None = None, size: int = 32) -> Path:
        return make_photos(root or tmp_path / "photos", counts, size)

    return make


def tiny_config(data: str, **changes):
    """The smallest real training: random weights, 32 px, one epoch per phase.

    MobileNet (v1) at width 0.25 is a real `keras.applications` network whose training step
    Keras builds in about half the time of MobileNetV2's (no residual blocks).
    """
    from core.network.config import AugmentationConfig, RunConfig

    values = dict(
        data=data,
        backbone="mobilenet_0.25",
        weights="none",
        image_size=32,
        batch_size=8,
        head_epochs=1,
        finetune_epochs=1,
        augmentation=AugmentationConfig.off(),
        early_stopping_patience=0,
        reduce_lr_patience=0,
    )
    values.update(changes)
    return RunConfig(**values)


def recorded_run(root: Path, run_id: str, data: Path, seed: int = 0, **changes):
    """A finished run's files without training it (for pages, reports and projects, which only read them):
    its config, a scan of `data`, epochs of events and history, and an evaluation scikit-learn scores
    from random answers. `model.keras` is a placeholder: nothing here loads it."""
    import csv
    import json
    import time

    from core.data.datasets import scan_dataset
    from core.runs.directory import HISTORY_COLUMNS, RunDirectory
    from core.runs.status import RunState, Stage
    from core.training.evaluation import evaluate_predictions

    rng = np.random.default_rng(seed)
    config = tiny_config(str(data), **changes)
    run = RunDirectory.create(root, config, run_id=run_id)
    report = scan_dataset(data)
    run.dataset_path.write_text(json.dumps(report.to_dict()))
    names = report.class_names
    events, rows = [{"type": "phase_start", "phase": 1, "epoch": 0, "steps": 2}], []
    epochs = config.head_epochs + config.finetune_epochs
    for epoch in range(1, epochs + 1):
        accuracy = min(0.4 + 0.1 * epoch + rng.uniform(0, 0.05), 1.0)
        row = {"phase": 1 if epoch <= config.head_epochs else 2, "epoch": epoch, "seconds": 1.0, "loss": 1 / epoch}
        row |= {"accuracy": accuracy, "val_loss": 1.2 / epoch, "val_accuracy": accuracy - 0.05, "learning_rate": 0.01}
        events += [{"type": "batch", "epoch": epoch, "batch": 2, "steps": 2, "loss": row["loss"], "accuracy": accuracy}]
        events += [{"type": "epoch", **row}]
        rows.append(row)
    run.events_path.write_text("".join(json.dumps(e) + "\n" for e in events))
    with open(run.history_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    test = [item for item in report.items][: 4 * len(names)]
    labels = [names.index(item.label) for item in test]
    probabilities = rng.dirichlet(np.ones(len(names)), size=len(test))
    probabilities[np.arange(len(test)), labels] += rng.uniform(0, 1.5, size=len(test))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    evaluation = evaluate_predictions(labels, probabilities, names, [item.path for item in test])
    run.evaluation_path.write_text(json.dumps(evaluation))
    run.splits_path.write_text(
        "split,label,path\n"
        + "".join(f"{'test' if item in test else 'train'},{item.label},{item.path}\n" for item in report.items)
    )
    run.model_path.write_bytes(b"placeholder model " * 100)
    now = time.time()
    run.update_status(
        state=RunState.SUCCEEDED,
        stage=Stage.DONE,
        message=f"Finished. {evaluation['accuracy']:.1%} accuracy on {len(test)} test images.",
        accuracy=evaluation["accuracy"],
        accuracy_split=evaluation["split"],
        started=now - 90,
        finished=now,
        epoch=epochs,
        epochs_total=epochs,
        image_size=32,
        class_names=names,
        images={"train": len(report.items) - len(test), "val": 0, "test": len(test)},
        weights_kind="none",
        kept="final",
        stage_seconds={"preparing": 5.0, "head": 40.0, "finetune": 40.0, "evaluating": 5.0},
        machine={"cores": 2, "processor": "test CPU", "gpus": [], "system": "Linux", "tensorflow": "2.21.0"},
    )
    return run
