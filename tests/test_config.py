"""The config object: defaults valid, every bad value named, JSON round trip, core free of Streamlit."""

import ast
from pathlib import Path

import pytest

from core.config import AugmentationConfig, ConfigError, RunConfig

REPO = Path(__file__).resolve().parent.parent


def test_defaults_are_valid_and_round_trip_through_json():
    config = RunConfig(head_units=(256,), augmentation=AugmentationConfig(contrast=0.1)).validate()
    assert RunConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("image_size", 8, "image_size"),
        ("batch_size", 0, "batch_size"),
        ("head_epochs", -1, "head_epochs"),
        ("head_learning_rate", 0.0, "head_learning_rate"),
        ("finetune_learning_rate", 10.0, "finetune_learning_rate"),
        ("optimizer", "adagrad", "optimizer"),
        ("unfreeze", "top:x", "unfreeze"),
        ("backbone", "alexnet", "not known"),
        ("dropout", 1.0, "dropout"),
        ("class_weights", "maybe", "class_weights"),
        ("keep", "latest", "keep"),
        ("image_size", -1, "image_size"),
        ("val_fraction", 0.0, "val_fraction"),
        ("data", "", "data"),
    ],
)
def test_each_bad_value_is_named(field, value, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig().replace(**{field: value}).validate()


def test_zero_epochs_in_one_phase_is_fine_but_not_both():
    RunConfig(finetune_epochs=0).validate()
    with pytest.raises(ConfigError, match="nothing would train"):
        RunConfig(head_epochs=0, finetune_epochs=0).validate()


def test_bad_augmentation_and_unknown_fields():
    with pytest.raises(ConfigError, match="augmentation.rotation"):
        RunConfig(augmentation=AugmentationConfig(rotation=2.0)).validate()
    with pytest.raises(ConfigError, match="Unknown config fields: colour"):
        RunConfig.from_dict({"colour": "red"})


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
