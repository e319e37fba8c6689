"""Cached features: the split classifier computes exactly what the whole one does, caches are
reused and invalidated by what they depend on, and training on them gives a complete model."""

import json

import keras
import numpy as np
import pytest

from core.network.backbones import BACKBONES
from core.network.config import AugmentationConfig
from core.network.freezing import UnfreezePlan, find_cut
from core.network.model import build_classifier
from core.runs.directory import RunDirectory
from core.training.features import FeatureKey, extract, feature_dataset, split_classifier
from core.training.worker import train_run
from tests.conftest import SHARED, needs_shared, needs_shared_weights, tiny_config

SPEC = BACKBONES["mobilenet_v2_0.35"]
SHARED_V2_035 = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


@pytest.fixture
def weights_file(tmp_path):
    """A stand-in for pretrained weights: a randomly initialised base saved as a weights file."""
    keras.utils.set_random_seed(0)
    path = tmp_path / "base.weights.h5"
    SPEC.build(32, weights=None).save_weights(path)
    keras.backend.clear_session()
    return str(path)


def _classifier(augmentation=None):
    base = SPEC.build(32, weights=None)
    model = build_classifier(base, SPEC, 3, 32, augmentation or AugmentationConfig.off(), head_units=(8,))
    return model, base


def test_the_cut_is_at_the_first_unfrozen_layer_or_below_a_skip_connection():
    _, base = _classifier()
    names = [layer.name for layer in base.layers]
    assert find_cut(base, UnfreezePlan.parse("block:block_13").mask(SPEC, names)) == "block_13_expand"
    inside_residual = [
        name == "block_12_project" or i > names.index("block_12_project") for i, name in enumerate(names)
    ]
    cut = find_cut(base, inside_residual)
    assert names.index(cut) < names.index("block_12_project")  # block 12 adds block 11's output: no cut inside
    keras.Model(base.get_layer(cut).input, base.output)
    assert find_cut(base, [False] * len(names)) == ""


@pytest.mark.heavy
@pytest.mark.parametrize("cut", ["", "block_13_expand"])
def test_the_parts_compute_exactly_what_the_whole_classifier_computes(cut):
    model, base = _classifier()
    parts = split_classifier(model, base, 32, cut)
    pixels = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3)).astype("float32")
    whole = model.predict(pixels, verbose=0)
    if cut:
        bottom = parts.front.predict(pixels, verbose=0)
        np.testing.assert_allclose(parts.top_and_head.predict(bottom, verbose=0), whole, atol=1e-5)
        both = parts.front_both.predict(pixels, verbose=0)
        np.testing.assert_allclose(both[0], bottom, atol=1e-6)
        pooled = both[1]
    else:
        pooled = parts.front.predict(pixels, verbose=0)
    np.testing.assert_allclose(parts.head.predict(pooled, verbose=0), whole, atol=1e-5)
    assert parts.head.get_layer("predictions") is model.get_layer("predictions")  # shared, not copied


def test_extraction_is_cached_by_key_and_views_are_augmented(tmp_path):
    model, base = _classifier(AugmentationConfig(flip="horizontal", rotation=72.0))
    parts = split_classifier(model, base, 32, "block_13_expand")
    images = np.random.default_rng(1).integers(0, 255, (10, 32, 32, 3)).astype("uint8")
    key = FeatureKey("imgs", "mobilenet_v2_0.35", "w", "block_13_expand", "aug", 3, 0)
    (first,), cached = extract(parts.front, images, [("bottom", key)], augment=parts.augment, views=3, batch_size=4)
    assert not cached and first.shape[:2] == (3, 10) and first.dtype == np.float16
    (again,), cached = extract(parts.front, images, [("bottom", key)], augment=parts.augment, views=3)
    assert cached and np.array_equal(np.asarray(first), np.asarray(again))
    assert not np.array_equal(np.asarray(first[0]), np.asarray(first[1]))  # view 1 is augmented, view 0 is not
    other = FeatureKey("imgs", "mobilenet_v2_0.35", "w", "block_13_expand", "aug2", 3, 0)
    _, cached = extract(parts.front, images, [("bottom", other)])
    assert not cached  # another augmentation is another cache


@pytest.mark.parametrize("in_memory", [True, False])
def test_feature_batches_pick_one_view_per_image(in_memory, monkeypatch):
    from core.training import features

    if not in_memory:
        monkeypatch.setattr(features, "IN_MEMORY_BYTES", 0)
    views = np.stack([np.full((6, 2), v * 10 + np.arange(6)[:, None], dtype=np.float16) for v in range(3)])
    labels = np.arange(6) % 2
    batches = list(feature_dataset(views, labels, 4, shuffle=True, seed=1).as_numpy_iterator())
    rows = np.concatenate([b[0] for b in batches])
    seen_labels = np.concatenate([b[1] for b in batches])
    assert rows.shape == (6, 2) and rows.dtype == np.float32
    image = rows[:, 0] % 10  # which image each row came from
    assert sorted(image) == list(range(6)) and np.array_equal(seen_labels, image.astype(int) % 2)
    assert set(rows[:, 0] // 10) <= {0, 1, 2}


def test_phase_2_makes_each_altered_version_as_an_epoch_begins_and_stores_them_once_all_exist(tmp_path, monkeypatch):
    from core.training import features

    monkeypatch.setattr(features, "features_dir", lambda: tmp_path)
    model, base = _classifier(AugmentationConfig(flip="horizontal", rotation=72.0))
    parts = split_classifier(model, base, 32, "block_13_expand")
    images = np.random.default_rng(1).integers(0, 255, (10, 32, 32, 3)).astype("uint8")
    originals = FeatureKey("imgs", SPEC.key, "w", "block_13_expand", "", 1, 0)
    (stored,), _ = extract(parts.front, images, [("bottom", originals)])
    key = FeatureKey("imgs", SPEC.key, "w", "block_13_expand", "aug", 3, 0)
    views = features.LazyViews(stored, images, parts.front, parts.augment, key, lambda: False)
    dataset = features.lazy_dataset(views, np.arange(10) % 2, 10, seed=0)
    first = next(dataset.as_numpy_iterator())[0]
    totals = np.sort(np.asarray(stored[0], np.float32).sum(axis=(1, 2, 3)))
    assert np.allclose(np.sort(first.sum(axis=(1, 2, 3))), totals)  # before any version is made: the originals
    assert views.add_view() and views.ready == 2 and not views.path.exists()
    assert not np.array_equal(np.asarray(views.array[1]), np.asarray(stored[0]))  # an altered version
    epoch = next(dataset.as_numpy_iterator())[0]  # the epoch trains on the version made as it began
    made = np.sort(np.asarray(views.array[1], np.float32).sum(axis=(1, 2, 3)))
    assert np.allclose(np.sort(epoch.sum(axis=(1, 2, 3))), made, rtol=1e-3)
    stopped = features.LazyViews(stored, images, parts.front, parts.augment, key, lambda: True)
    assert not stopped.add_view() and stopped.ready == 1  # Stop pressed: the phase ends, no version is made
    stopped.close()
    assert views.add_view() and views.ready == 3 and views.path.exists()  # all made: stored for later runs
    assert not views.add_view()
    views.close()
    (again,), cached = extract(parts.front, images, [("bottom", key)], views=3)
    assert cached and np.array_equal(np.asarray(again), np.asarray(views.array))
    four = FeatureKey("imgs", SPEC.key, "w", "block_13_expand", "aug", 4, 0)
    unfinished = features.LazyViews(stored, images, parts.front, parts.augment, four, lambda: False)
    unfinished.add_view()
    unfinished.close()  # a phase that ended early leaves no file behind
    assert sorted(path.name.split("-")[0] for path in tmp_path.iterdir()) == ["bottom", "bottom"]


def _train(tmp_path, config, name):
    run = RunDirectory.create(tmp_path / "runs", config, run_id=name)
    lines = []
    state = train_run(run, echo=lines.append)
    return run, state, "\n".join(lines)


@pytest.mark.heavy
def test_training_on_cached_features_saves_a_complete_model_and_reuses_the_cache(make_dataset, tmp_path, weights_file):
    data = str(make_dataset({"red": 10, "green": 10, "blue": 10}))
    config = tiny_config(
        data,
        backbone=SPEC.key,
        weights=weights_file,
        head_epochs=2,
        finetune_epochs=2,
        augmentation=AugmentationConfig(flip="horizontal"),
        feature_views=2,
    )
    run, state, log = _train(tmp_path, config, "first")
    assert state == "succeeded", log
    status = run.status()
    assert status.feature_mode.startswith("Fast mode: the pretrained network reads each photo once")
    assert "Phase 2 adds up to 1 randomly altered version of each training photo (2 versions in all)" in log
    assert "Computed the frozen layers' output" in log
    assert set(status.phase_seconds) == {"1", "2"}
    assert [row["phase"] for row in run.history()] == [1, 1, 2, 2]

    model = keras.models.load_model(run.model_path, safe_mode=True)
    photo = np.random.default_rng(0).integers(0, 255, (1, 57, 43, 3)).astype("float32")  # any size, raw pixels
    assert model.predict(photo, verbose=0).shape == (1, 3)
    evaluation = json.loads(run.evaluation_path.read_text())
    assert evaluation["count"] > 0

    _, state, log = _train(tmp_path, config, "second")
    assert state == "succeeded" and log.count("Reused the cached output of the frozen layers") == 2
    # Phase 1 stores the original photos only, whatever the number of versions; phase 2 makes the altered
    # versions as its epochs begin: with 3 versions and 2 epochs, 2 new ones, then stored for later runs.
    _, state, log = _train(tmp_path, config.replace(feature_views=3), "third")
    assert state == "succeeded" and log.count("Reused the cached output of the frozen layers") == 2, log
    assert "Phase 2 made 2 altered versions of each training photo as its epochs began, in " in log
    _, state, log = _train(tmp_path, config.replace(feature_views=3), "fourth")
    assert state == "succeeded" and "Phase 2 made" not in log, log  # all 3 versions were stored by the third
    # Flatten keeps every position (at 64 px, a 2x2 map: 4 times the averaged features' size), so
    # it needs a cache of its own; so does max pooling.
    for pooling in (
        "avg",
        "flatten",
        "max",
    ):  # the head alone trains on pooled features: enough to show the keys differ
        head_only = config.replace(image_size=64, pooling=pooling, finetune_epochs=0)
        _, state, log = _train(tmp_path, head_only, f"pool-{pooling}")
        assert state == "succeeded", log


@pytest.mark.heavy
def test_random_weights_and_the_switch_use_the_whole_network(make_dataset, tmp_path, weights_file):
    data = str(make_dataset({"red": 6, "green": 6}))
    run, state, _ = _train(tmp_path, tiny_config(data, finetune_epochs=0), "random")
    assert state == "succeeded" and "random weights train from scratch" in run.status().feature_mode
    switched_off = tiny_config(data, backbone=SPEC.key, weights=weights_file, fast_mode=False, finetune_epochs=0)
    run, state, _ = _train(tmp_path, switched_off, "off")
    assert state == "succeeded" and "turned off" in run.status().feature_mode


@pytest.mark.heavy
def test_the_learning_rate_task_sweeps_the_head_on_cached_features(make_dataset, weights_file):
    from core.commands.task_bodies import lr_find_task

    data = str(make_dataset({"red": 10, "green": 10}))
    result = lr_find_task(tiny_config(data, backbone=SPEC.key, weights=weights_file).to_dict())
    assert "error" not in result, result
    assert result["suggestion"] and "Suggested phase-1 learning rate" in result["message"]
    assert len(result["rates"]) == len(result["losses"]) >= 10


@pytest.mark.heavy
@needs_shared  # a randomly initialised base's features are around 1e-11: float16 storage would hold zeros
def test_a_head_only_run_calibrates_from_the_stored_features_as_the_kept_model_would(make_dataset, tmp_path):
    from core.training.calibration import calibrate_model
    from core.training.prepare import prepare

    data = str(make_dataset({"red": 10, "green": 10, "blue": 10}))
    weights = str(SHARED_V2_035)
    config = tiny_config(data, backbone=SPEC.key, weights=weights, head_epochs=2, finetune_epochs=0)
    run, state, log = _train(tmp_path, config, "head-only")
    assert state == "succeeded", log
    stored = json.loads(run.calibration_path.read_text())
    # What running the kept model over the same photos gives (the slow way this replaces).
    prepared = prepare(run, config, lambda line: None)
    model = keras.models.load_model(run.model_path, safe_mode=True)
    names = run.status().class_names
    again = calibrate_model(model, prepared.data["train"], prepared.data["val"], len(names), config.seed)
    assert np.allclose(stored["centres"], again["centres"], atol=2e-3)  # float16 storage
    assert stored["threshold"] == pytest.approx(again["threshold"], rel=0.05, abs=2e-3)


@pytest.mark.heavy
@needs_shared_weights  # a randomly initialised base's features are about 1e-11, zeros in float16: nothing to fit
@pytest.mark.parametrize("fits", [True, False])
def test_fine_tuning_is_skipped_where_the_head_alone_fits_its_training_photos(
    make_dataset, tmp_path, monkeypatch, fits
):
    from core.training import keep, phases

    for module in (keep, phases):  # this tiny set's validation photos count as enough
        monkeypatch.setattr(module, "BEST_NEEDS_VALIDATION", 2)
    if not fits:
        monkeypatch.setattr(phases, "HEAD_FITS", 1.01)  # no head fits more than all its photos
    data = str(make_dataset({"red": 12, "green": 12, "blue": 12}))
    config = tiny_config(
        data, backbone=SPEC.key, weights=str(SHARED_V2_035), head_epochs=10, head_learning_rate=0.03, finetune_epochs=4
    )
    run, state, log = _train(tmp_path, config, "judged")
    assert state == "succeeded", log
    status = run.status()
    phases_run = [row["phase"] for row in run.history()]
    if fits:
        assert phases_run == [1] * 10, log
        assert status.finetune_decision.startswith("Fine-tuning was skipped: the new head alone already tells apart ")
        assert status.kept == "first" and run.evaluation()["model"] == "first"
        assert "The first model (only its new head trained) was kept." in status.kept_in_words()
    else:
        assert "of its training photos (" in log and ": fine-tuning adapts the network's features" in log
        assert 1 <= phases_run.count(2) <= 4 and status.finetune_decision.startswith("Fine-tuning ")
    assert status.finetune_decision in log
