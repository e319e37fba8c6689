"""TensorFlow work runs in task processes; the dashboard's own process never imports TensorFlow."""

import json
import subprocess
import sys

import pytest

from core.base.tasks import read_result, result_path, start_task, task_running
from core.commands.task_bodies import run_task
from tests.conftest import REPO, wait_until

NETWORK = {"backbone": "mobilenet_v2_0.35", "image_size": 32, "pooling": "avg", "head_units": [], "classes": 3}


@pytest.mark.heavy
def test_network_task_in_its_own_process_is_cached_and_joined():
    path = start_task("network", NETWORK)
    assert start_task("network", NETWORK) == path  # joined, not started twice
    assert task_running(path) or path.exists()
    result = wait_until(lambda: read_result(path), 180, "the network task's result")
    assert len(result["rows"]) == 154 and any(row["is_batch_norm"] for row in result["rows"])
    assert result["head_params"] == 1280 * 3 + 3  # Keras's count: the pooled features times the classes, and biases
    assert start_task("network", NETWORK) == path and not task_running(path)  # cached: nothing started


def test_the_head_count_follows_the_head(tmp_path):
    out = tmp_path / "n.json"
    assert run_task("network", {**NETWORK, "pooling": "flatten", "head_units": [16]}, out) == 0
    assert json.loads(out.read_text())["head_params"] == (1280 * 1 * 1) * 16 + 16 + 16 * 3 + 3  # a 1x1 map at 32 px


def test_task_errors_come_back_as_messages(tmp_path):
    out = tmp_path / "r.json"
    assert run_task("network", {**NETWORK, "backbone": "alexnet"}, out) == 1
    assert "Unknown backbone" in json.loads(out.read_text())["error"]
    assert run_task("nope", {}, tmp_path / "n.json") == 1


@pytest.mark.heavy
def test_augment_and_predict_tasks(make_dataset, tmp_path):
    import keras
    import numpy as np

    from core.data.images import load_rgb
    from core.network.backbones import BACKBONES
    from core.network.config import AugmentationConfig
    from core.network.model import build_classifier
    from core.runs.directory import RunDirectory
    from core.training.calibration import calibrate, features_of
    from tests.conftest import tiny_config

    data = make_dataset({"red": 2, "green": 2})
    paths = sorted(str(p) for p in data.rglob("*.png"))
    augmented = tmp_path / "a.json"
    run_task("augment", {"paths": paths[:2], "augmentation": {"rotation": 100.0}, "seed": 1, "size": 32}, augmented)
    images = json.loads(augmented.read_text())["images"]
    assert len(images) == 2 and all(p.endswith(".png") for p in images)
    spec = BACKBONES["mobilenet_v2_0.35"]
    run = RunDirectory.create(tmp_path / "runs", tiny_config(str(data)), run_id="finished")
    model = build_classifier(spec.build(32), spec, 2, 32, AugmentationConfig.off())
    model.save(run.model_path)
    run.update_status(image_size=32, class_names=["green", "red"])
    features, _ = features_of(model, np.stack([load_rgb(p, 32) for p in paths]))
    run.calibration_path.write_text(json.dumps(calibrate(features, np.array([0, 0, 1, 1]), features[:0], 2)))
    keras.backend.clear_session()
    junk = tmp_path / "junk.jpg"
    junk.write_text("<html></html>")
    out = tmp_path / "p.json"
    run_task("predict", {"run_dir": str(run.path), "image_paths": [paths[0], str(junk)]}, out)
    first, second = json.loads(out.read_text())["predictions"]
    assert [label for label, _ in first["top"]] in (["green", "red"], ["red", "green"])
    assert abs(sum(p for _, p in first["top"]) - 1.0) < 1e-4
    assert first["unfamiliar"] is False and first["distance"] >= 0  # a training photo lies within its class
    assert second["error"].startswith("not an image")


def test_results_are_keyed_by_their_arguments():
    assert result_path("network", {"backbone": "a", "image_size": 1}) != result_path(
        "network", {"backbone": "a", "image_size": 2}
    )
    assert result_path("network", {"image_size": 1, "backbone": "a"}) == result_path(
        "network", {"backbone": "a", "image_size": 1}
    )


SCRIPT = r"""
import sys
from pathlib import Path
from streamlit.testing.v1 import AppTest
repo = Path(sys.argv[1])
for name in ("home", "data", "model", "train", "evaluate"):
    at = AppTest.from_file(str(repo / "app_pages" / f"{name}.py"), default_timeout=240)
    at.run()
    assert not at.exception, (name, at.exception)
at = AppTest.from_file(str(repo / "streamlit_app.py"), default_timeout=60).run()
assert not at.exception
print("tensorflow" in sys.modules, "keras" in sys.modules)
"""


@pytest.mark.heavy
def test_the_dashboard_process_never_imports_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO)], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "False False"


def test_sample_task_reports_a_failed_download_in_plain_words(monkeypatch, tmp_path):
    import core.data.sources
    from core.data.datasets import DatasetError

    def offline(name):
        raise DatasetError(f"Could not download the sample '{name}'. This machine may be offline.")

    monkeypatch.setattr(core.data.sources, "download_sample", offline)
    out = tmp_path / "s.json"
    assert run_task("sample", {"name": "flowers"}, out) == 1
    assert json.loads(out.read_text()) == {
        "error": "Could not download the sample 'flowers'. This machine may be offline."
    }
