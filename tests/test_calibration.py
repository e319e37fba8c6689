"""A photo unlike every class is said to be, measured on the features the model itself uses."""

import numpy as np
import pytest

from core.training.calibration import calibrate, class_centres, distances, unfamiliar
from tests.conftest import SHARED, SHARED_V2_05, needs_shared


def _cluster(centre, count, rng, spread=0.05):
    return np.asarray(centre, np.float32) + rng.normal(0, spread, (count, len(centre))).astype(np.float32)


def test_photos_near_their_class_are_familiar_and_others_are_not():
    rng = np.random.default_rng(0)
    a, b, elsewhere = [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]
    train = np.concatenate([_cluster(a, 50, rng), _cluster(b, 50, rng)])
    labels = np.repeat([0, 1], 50)
    val = np.concatenate([_cluster(a, 10, rng), _cluster(b, 10, rng)])
    calibration = calibrate(train, labels, val, 2)
    assert calibration["reference"] == "validation" and calibration["reference_photos"] == 20
    _, flags = unfamiliar(np.concatenate([_cluster(a, 5, rng), _cluster(elsewhere, 5, rng)]), calibration)
    assert flags.tolist() == [False] * 5 + [True] * 5


def test_centres_are_unit_directions_and_distances_are_cosine():
    centres = class_centres(np.array([[2.0, 0.0], [4.0, 0.0], [0.0, 3.0]]), np.array([0, 0, 1]), 2)
    np.testing.assert_allclose(centres, [[1, 0], [0, 1]])
    np.testing.assert_allclose(distances(np.array([[1.0, 0.0], [1.0, 1.0]]), centres), [0.0, 1 - 2**-0.5], atol=1e-6)


def test_without_validation_photos_the_training_photos_set_the_limit():
    rng = np.random.default_rng(1)
    train = _cluster([1, 0, 0], 20, rng)
    calibration = calibrate(train, np.zeros(20, int), train[:0], 1)
    assert calibration["reference"] == "training" and calibration["threshold"] > 0


@pytest.mark.heavy
@pytest.mark.real
@needs_shared
def test_the_demo_model_says_an_ant_is_none_of_its_shapes(tmp_path):
    """The issue's example: an ant photo given to the shapes model came back "triangle 92%"."""
    from core.commands.task_bodies import predict_task
    from core.runs.directory import RunDirectory
    from core.training.worker import train_run
    from tests.conftest import tiny_config

    config = tiny_config(
        "demo", backbone="mobilenet_v2_0.5", weights=str(SHARED_V2_05), image_size=96, head_epochs=10, finetune_epochs=0
    )
    run = RunDirectory.create(tmp_path / "runs", config, run_id="shapes")
    assert train_run(run, echo=lambda line: None) == "succeeded", run.status()
    ants = sorted((SHARED / "datasets" / "hymenoptera_data" / "val" / "ants").glob("*.jpg"))[:10]
    test_shapes = [row.split(",")[2] for row in run.splits_path.read_text().splitlines()[1:] if row.startswith("test")]
    answers = predict_task(str(run.path), [str(p) for p in ants] + test_shapes)["predictions"]
    ant_flags = [a["unfamiliar"] for a in answers[: len(ants)]]
    shape_flags = [a["unfamiliar"] for a in answers[len(ants) :]]
    assert sum(ant_flags) >= 8, ant_flags  # ants are not shapes
    assert sum(shape_flags) <= len(shape_flags) * 0.1, shape_flags  # the test shapes mostly are
