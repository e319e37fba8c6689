"""Training on several devices at once (tf.distribute) and in mixed precision (core.network.distribute).

The processor is split into logical devices with STUDIO_CPU_DEVICES, which must happen before
TensorFlow starts: every run here is a CLI process, as a person would start it.
"""

import csv
import json
import math
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from core.base.settings import ConfigError
from core.network.config import RunConfig
from core.network.distribute import CPU_DEVICES_ENV, Placement, placement_details, placement_in_words
from tests.conftest import REPO, SHARED, SHARED_V2_05, needs_shared


def train(out, *args, cpu_devices: int | None = None, timeout=600):
    # Its own cache: the frozen layers' output is computed on these devices, not reused from another run.
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", STUDIO_CACHE=f"{out}-cache")
    env.pop(CPU_DEVICES_ENV, None)
    if cpu_devices:
        env[CPU_DEVICES_ENV] = str(cpu_devices)
    command = [sys.executable, "-m", "core", "train", "--out", str(out), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def read(out, name):
    return json.loads((out / name).read_text())


TINY = ["--backbone", "mobilenet_v2_0.35", "--weights", "none", "--image-size", "32", "--batch-size", "8"]


def test_devices_accepts_all_cpu_or_a_count_and_refuses_the_rest():
    for value in ("all", "cpu", "1", "3", "64"):
        assert RunConfig(devices=value).validate().devices == value
    for value in ("0", "65", "two", "", "-1"):
        with pytest.raises(ConfigError) as caught:
            RunConfig(devices=value).validate()
        assert caught.value.setting == "devices" and "Devices to train on must be one of" in str(caught.value)


def test_learning_rates_grow_with_the_replicas_by_the_optimizers_rule():
    strategy = SimpleNamespace(num_replicas_in_sync=4)
    placement = Placement(strategy, ("GPU:0", "GPU:1", "GPU:2", "GPU:3"), "mixed_float16", "auto")
    assert placement.learning_rate_scale("adam") == 2.0 and placement.learning_rate_scale("rmsprop") == 2.0
    assert placement.learning_rate_scale("sgd") == 4.0
    facts = placement.facts(32, placement.global_batch(32), "adam")
    assert facts["global_batch"] == 128 and facts["replicas"] == 4 and facts["learning_rate_scale"] == 2.0
    assert placement_in_words(facts) == "4 graphics cards (GPUs) at once, 128 photos at a time"
    words = placement_details(facts)
    assert "4 devices at once (GPU:0, GPU:1, GPU:2, GPU:3" in words and "mixed float16" in words
    assert "32 photos per device, 128 per step" in words and "learning rates ×2 for the larger batch" in words
    one = Placement(SimpleNamespace(num_replicas_in_sync=1), ("CPU:0",), "float32", "auto")
    assert one.learning_rate_scale("sgd") == 1.0
    assert placement_in_words(one.facts(32, 32, "sgd")) == "the processor, 32 photos at a time"
    assert placement_details(one.facts(32, 32, "sgd")) == "CPU:0 in float32, 32 photos per step"
    node = {"host": "gpu-7", "pid": 1}
    assert placement_in_words(one.facts(32, 32, "sgd"), node) == (
        "the processor of the cluster's computer gpu-7, 32 photos at a time"
    )
    assert placement_details(one.facts(32, 32, "sgd"), node).startswith("CPU:0 of the cluster's node gpu-7 in float32")
    assert placement_in_words({}) == "" and placement_details({}) == ""


@pytest.mark.heavy
def test_a_mixed_precision_model_is_kept_in_float32_with_the_same_weights():
    import keras

    from core.network.backbones import get_backbone
    from core.network.config import AugmentationConfig
    from core.network.distribute import float32_copy
    from core.network.model import build_classifier

    spec = get_backbone("mobilenet_v2_0.35")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        base = spec.build(32, weights=None)
        model = build_classifier(base, spec, 3, 32, AugmentationConfig.off(), pretrained=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("pool").dtype_policy.name == "mixed_float16"
    copy = float32_copy(model)

    def policies(layer):
        yield layer.dtype_policy.name
        for inner in getattr(layer, "layers", []):
            yield from policies(inner)

    assert set(policies(copy)) == {"float32"} and "mixed_float16" in set(policies(model))
    assert keras.mixed_precision.global_policy().name == "float32"
    for mine, theirs in zip(copy.weights, model.weights, strict=True):
        assert np.array_equal(mine.numpy(), theirs.numpy())
    pixels = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(copy.predict(pixels, verbose=0), model.predict(pixels, verbose=0), atol=2e-2)


@pytest.mark.heavy
def test_more_devices_than_the_machine_has_fails_in_plain_words(make_dataset, tmp_path):
    data = make_dataset({"red": 6, "green": 6})
    result = train(tmp_path / "run", "--data", str(data), *TINY, "--devices", "3", cpu_devices=2)
    assert result.returncode == 2, result.stderr[-2000:]
    status = read(tmp_path / "run", "status.json")
    assert status["state"] == "failed"
    assert status["message"].startswith("This run asks for 3 devices, but this machine has no GPU")
    assert "split into 2 by STUDIO_CPU_DEVICES" in status["message"] and "Traceback" not in result.stderr


@pytest.mark.heavy
def test_mixed_precision_trains_and_says_so(make_dataset, tmp_path):
    import keras

    data = make_dataset({"red": 8, "green": 8})
    out = tmp_path / "run"
    result = train(
        out, "--data", str(data), *TINY, "--head-epochs", "2", "--finetune-epochs", "0", "--precision", "mixed"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    placement = read(out, "status.json")["placement"]
    assert placement["precision"] == "mixed_float16" and "mixed float16 was chosen" in placement["precision_why"]
    kept = keras.models.load_model(out / "model.keras")
    assert {layer.dtype_policy.name for layer in kept.layers} == {"float32"}
    checkpoint = keras.models.load_model(out / "checkpoints" / "last.keras")
    assert checkpoint.get_layer("pool").dtype_policy.name == "mixed_float16"  # resumes as it trained


@pytest.mark.real
@needs_shared
@pytest.mark.parametrize(
    "mode",
    [
        pytest.param(["--head-epochs", "10", "--finetune-epochs", "3", "--feature-views", "2"], id="fast mode"),
        pytest.param(["--head-epochs", "3", "--finetune-epochs", "1", "--no-fast-mode"], id="photos every epoch"),
    ],
)
@pytest.mark.heavy
def test_two_replicas_reach_the_accuracy_of_one(mode, tmp_path):
    """Keras 3.7+ was reported to give NaN losses under MirroredStrategy (keras-team/keras#20568, #21172):
    on two logical devices the losses stay finite and the accuracy matches one device's within noise.

    One device is trained in fast mode only (the comparison); with photos every epoch, two devices alone
    are held to the same floor: that mode's own one-device run doubled the test's time and checked nothing new.
    """
    data = SHARED / "datasets" / "hymenoptera_data"
    common = ["--data", str(data), "--weights", str(SHARED_V2_05), "--image-size", "128", *mode]
    accuracy = {}
    for replicas in (1, 2) if "--no-fast-mode" not in mode else (2,):
        out = tmp_path / f"replicas-{replicas}"
        result = train(out, *common, cpu_devices=replicas)
        assert result.returncode == 0, result.stderr[-3000:]
        placement = read(out, "status.json")["placement"]
        assert placement["replicas"] == replicas and len(placement["devices"]) == replicas
        assert placement["global_batch"] == 32 * replicas and placement["batch_per_device"] == 32
        if replicas == 2:
            assert placement["devices"] == ["CPU:0", "CPU:1"] and placement["strategy"] == "MirroredStrategy"
            assert placement["learning_rate_scale"] == round(math.sqrt(2), 4)
            assert "Training on 2 devices at once (CPU:0, CPU:1, MirroredStrategy)" in result.stdout
            if "--no-fast-mode" not in mode:  # fast mode: the features computed across both replicas
                assert "Computed the frozen layers' output" in result.stdout
        losses = [float(row["loss"]) for row in csv.DictReader((out / "history.csv").open())]
        assert losses and all(math.isfinite(loss) for loss in losses)
        accuracy[replicas] = read(out, "evaluation.json")["accuracy"]
    # 153 test photos: one photo is 0.65 points, and seeds alone move this set by about 4 (docs/recipes.md).
    assert min(accuracy.values()) >= 0.78 and abs(accuracy[2] - accuracy.get(1, accuracy[2])) <= 0.07, accuracy


def test_features_stored_in_mixed_precision_are_kept_apart_and_older_caches_stay_valid():
    import hashlib
    from dataclasses import asdict, replace

    from core.training.features import FEATURE_VERSION, FeatureKey

    key = FeatureKey("photos", "mobilenet_v2_0.5", "weights", "pool:avg", "", 1, 0)
    mixed = replace(key, precision="mixed_float16")
    assert mixed.digest() != key.digest()
    before = {name: value for name, value in asdict(key).items() if name != "precision"}  # the key's earlier form
    text = json.dumps({"version": FEATURE_VERSION, **before}, sort_keys=True)
    assert key.digest() == hashlib.sha1(text.encode()).hexdigest()[:24]
