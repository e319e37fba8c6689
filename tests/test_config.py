"""The config object: defaults valid, every bad value named, JSON round trip, old configs upgraded, core free of Streamlit."""

import ast
from pathlib import Path

import pytest

from core.network.config import SETTINGS, AugmentationConfig, ConfigError, RunConfig
from core.network.freezing import UnfreezePlan

REPO = Path(__file__).resolve().parent.parent


def test_defaults_are_valid_and_round_trip_through_json():
    config = RunConfig(head_units=(256,), augmentation=AugmentationConfig(contrast=0.1)).validate()
    assert RunConfig.from_json(config.to_json()) == config
    assert isinstance(RunConfig.from_json(config.to_json()).unfreeze, UnfreezePlan)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("image_size", 8, "Image size (pixels) must be 16 to 1024, or auto"),
        ("batch_size", 0, "Batch size must be 1 to 4096"),
        ("head_epochs", -1, "Head epochs must be 0 to 1000"),
        ("head_epochs", 2.5, "Head epochs must be a whole number"),
        ("head_learning_rate", 0.0, "Head learning rate must be above 0 and at most 1"),
        ("finetune_learning_rate", 10.0, "Fine-tune learning rate must be above 0 and at most 1"),
        ("optimizer", "adagrad", "must be one of adam, rmsprop, sgd"),
        ("backbone", "alexnet", "Pretrained network must be one of"),
        ("dropout", 1.0, "Dropout must be at least 0 and below 1"),
        ("class_weights", "maybe", "Class weights must be one of auto, on, off"),
        ("keep", "latest", "must be one of auto, final, best"),
        ("finetune_until", "forever", "How long to fine-tune must be one of pays, all"),
        ("finetune_until", "<script>", "How long to fine-tune must be one of pays, all"),
        ("image_size", -1, "Image size"),
        ("val_fraction", 0.0, "Validation share must be above 0 and below 0.5"),
        ("data", "", "Photos must be given"),
        ("cosine_decay", "yes", "must be true or false"),
        ("head_units", (0,), "whole numbers from 1 to 65536"),
    ],
)
def test_each_bad_value_is_named_in_words_and_by_its_setting(field, value, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")) as caught:
        RunConfig().replace(**{field: value}).validate()
    assert caught.value.setting == field


def test_zero_epochs_in_one_phase_is_fine_but_not_both():
    RunConfig(finetune_epochs=0).validate()
    with pytest.raises(ConfigError, match="nothing would train"):
        RunConfig(head_epochs=0, finetune_epochs=0).validate()


def test_bad_augmentation_and_unknown_fields():
    with pytest.raises(ConfigError, match=r"Rotate \(degrees, either way\) must be 0 to 180") as caught:
        RunConfig(augmentation=AugmentationConfig(rotation=200.0)).validate()
    assert caught.value.setting == "augmentation.rotation"
    with pytest.raises(ConfigError, match="Unknown config fields: colour"):
        RunConfig.from_dict({"colour": "red"})
    with pytest.raises(ConfigError, match="An unfreeze plan must be"):
        RunConfig.from_dict({"unfreeze": "half"})


def test_a_config_written_by_the_previous_version_is_read_as_it_meant():
    old = {
        "augmentation": {"horizontal_flip": True, "vertical_flip": True, "rotation": 0.05, "zoom": 0.1},
        "unfreeze": "block:block_6",
        "head_units": [256],
    }
    config = RunConfig.from_dict(old)
    assert config.augmentation.flip == "both" and config.augmentation.rotation == pytest.approx(18.0)
    assert config.unfreeze == UnfreezePlan.parse("block:block_6") and config.head_units == (256,)
    assert RunConfig.from_dict({"version": 2, "feature_cache": False}).fast_mode is False  # fast mode's old name
    with pytest.raises(ConfigError, match="Unknown config fields: feature_cache"):  # today's configs use one name
        RunConfig.from_dict({"version": 3, "feature_cache": False})
    # Runs made before fine-tuning could end early ran, and resume, every epoch set.
    assert RunConfig.from_dict({"version": 3}).finetune_until == "all"
    assert RunConfig.from_dict(RunConfig().to_dict()).finetune_until == "pays"


def test_every_setting_is_declared_once_with_words_and_bounds():
    for name, info in SETTINGS.items():
        meta = info.declaration
        assert meta.label and meta.label[0].isupper(), name
        if info.kind in (int, float):
            assert meta.low is not None and meta.high is not None, name
    assert SETTINGS["head_learning_rate"].flag == "--head-lr" and SETTINGS["augmentation.zoom"].flag == "--zoom"


def test_core_never_imports_streamlit():
    for path in sorted((REPO / "core").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "streamlit" for n in names), path
