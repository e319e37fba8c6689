"""Every export format, made from a trained run and checked in the runtime that loads it.

Three network families: the two with real ImageNet weights in ../shared (MobileNetV2, MobileNet
v1) and one with random weights that rescales inside (EfficientNetB0). Each run trains a head until
it is sure of its answers (int8 is judged on accuracy, and a head that is unsure everywhere flips on
the smallest rounding).
"""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile

import numpy as np
import pytest

from core.results.export import existing, export_folder, export_many, export_run, zip_path
from core.results.formats import FORMATS
from core.results.tfjs_tools import tfjs_unavailable
from tests.conftest import SHARED, needs_shared, tiny_config

WEIGHTS = SHARED / "weights"
FAMILIES = [
    pytest.param(
        "mobilenet_v2_0.35",
        WEIGHTS / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5",
        marks=[pytest.mark.real, needs_shared],
        id="mobilenet_v2-imagenet",
    ),
    pytest.param(
        "mobilenet_0.25",
        WEIGHTS / "mobilenet_2_5_224_tf_no_top.h5",
        marks=[pytest.mark.real, needs_shared],
        id="mobilenet_v1-imagenet",
    ),
    pytest.param("efficientnet_b0", "none", id="efficientnet_b0-random"),
]


@pytest.fixture(scope="session", autouse=True)
def shared_tools(tmp_path_factory):
    """The web export's tools are installed once for the whole session, not per test."""
    import os

    os.environ.setdefault("STUDIO_TOOLS", str(tmp_path_factory.mktemp("tools")))


def trained_run(tmp_path, make_dataset, backbone: str, weights, finetune: int = 0, size: int = 32):
    from core.runs.directory import RunDirectory
    from core.training.worker import train_run

    pretrained = weights != "none"
    per_class, side, epochs = (16, 64, 20) if pretrained else (14, 48, 12)
    photos = make_dataset({"red": per_class, "green": per_class, "blue": per_class}, size=side)
    config = tiny_config(
        str(photos),
        backbone=backbone,
        weights=str(weights),
        image_size=size,
        head_epochs=epochs,
        finetune_epochs=finetune,
        head_learning_rate=0.01,
    )
    run = RunDirectory.create(tmp_path / "runs", config, run_id=f"export-{backbone}")
    assert train_run(run, echo=lambda line: None) == "succeeded", run.status().message
    return run


def _check_every_format(run, int8: bool = True, only: tuple[str, ...] = ()) -> None:
    keys = [k for k in FORMATS if k != "tfjs" or tfjs_unavailable() is None]  # TF.js is checked in Node.js
    if not int8:
        keys.remove("tflite-int8")
    if only:
        keys = [k for k in keys if k in only]
    if "tfjs" not in keys:
        warnings.warn(f"TF.js left out: {tfjs_unavailable()}", stacklevel=2)
    results = dict(zip(keys, export_many(run, keys, progress=lambda line: None)))
    report = {k: (v.passed, v.agreement, v.accuracy, v.keras_accuracy) for k, v in results.items()}
    assert all(v.passed for v in results.values()), report
    for key, verification in results.items():
        assert verification.photos >= 6 and verification.size_bytes > 0 and verification.latency_ms > 0, key
        with zipfile.ZipFile(zip_path(run, key)) as archive:  # the model, its card and its check, nothing else
            top = {name.split("/")[1] for name in archive.namelist()}
        assert top == {FORMATS[key].main, "MODEL_CARD.md", "verification.json"}, (key, top)
        assert existing(run, key) == verification  # stored with the export, read back as made
    if "onnx" in results:
        assert results["onnx"].details["opset"] >= 13
    if int8:
        assert "float_ops" in results["tflite-int8"].details  # which operators stayed float is said


@pytest.mark.heavy
@pytest.mark.slow
@pytest.mark.parametrize("backbone, weights", FAMILIES)
def test_every_format_exports_and_passes_its_own_check(tmp_path, make_dataset, backbone, weights):
    pretrained = weights != "none"  # ImageNet features need photos larger than 32 px to tell colours apart well
    run = trained_run(
        tmp_path,
        make_dataset,
        backbone,
        weights,
        finetune=int(backbone == "mobilenet_0.25"),
        size=64 if pretrained else 32,
    )
    if pretrained:  # a model sure of its answers, for int8 to be judged on more than rounding luck
        assert run.status().accuracy >= 0.8, run.status().message
    # int8 is judged on accuracy, which random weights do not have: it is checked on MobileNetV2's weights.
    # MobileNet v1's operators are a subset of MobileNetV2's: it is checked where it differs, fine-tuned, in the
    # float LiteRT file. Its int8 file lost 1 of its 6 test photos in 1 of 3 runs under load (2 cores busy), and
    # passed alone: judged on 6 photos, one rounding flip is 17 points, so it is not judged here.
    v1 = backbone == "mobilenet_0.25"
    _check_every_format(run, int8=pretrained and not v1, only=("tflite",) if v1 else ())


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """One quick run shared by the tests below (random MobileNet v1 weights)."""
    from tests.conftest import write_image

    root = tmp_path_factory.mktemp("small")
    for label, colour in (("red", (220, 30, 30)), ("green", (30, 200, 40))):
        for k in range(10):
            write_image(root / "photos" / label / f"{label}_{k:02d}.png", colour, size=48)
    from core.network.config import AugmentationConfig
    from core.runs.directory import RunDirectory
    from core.training.worker import train_run

    config = tiny_config(
        str(root / "photos"),
        head_epochs=10,
        finetune_epochs=0,
        head_learning_rate=0.01,
        augmentation=AugmentationConfig(),  # the random layers that no export may carry
    )
    run = RunDirectory.create(root / "runs", config, run_id="small")
    assert train_run(run, echo=lambda line: None) == "succeeded", run.status().message
    return run


@pytest.mark.heavy
def test_the_inference_model_has_no_augmentation_and_answers_like_the_trained_one(small_run):
    import keras

    from core.network.inference import inference_model
    from core.results.export_base import check_photos

    trained = keras.models.load_model(small_run.model_path, compile=False)
    clean = inference_model(trained)
    assert "augmentation" in [layer.name for layer in trained.layers]
    assert "augmentation" not in [layer.name for layer in clean.layers]
    pixels, _, _ = check_photos(small_run)
    np.testing.assert_allclose(clean.predict(pixels, verbose=0), trained.predict(pixels, verbose=0), atol=1e-5)


@pytest.mark.heavy
def test_the_download_holds_the_model_and_a_model_card_in_words(small_run):
    verification = export_run(small_run, "tflite", progress=lambda line: None)
    with zipfile.ZipFile(zip_path(small_run, "tflite")) as archive:
        names = set(archive.namelist())
        card = archive.read("tflite/MODEL_CARD.md").decode()
    assert {"tflite/model.tflite", "tflite/MODEL_CARD.md", "tflite/verification.json"} <= names
    assert "0: green, 1: red" in card  # classes in output order
    assert "32 x 32 pixels" in card and "0 to 255" in card and "inside the model" in card
    assert f"{verification.accuracy:.1%} on {verification.photos} test photos" in card
    assert "from ai_edge_litert.interpreter import Interpreter" in card and "Android and iOS" in card


@pytest.mark.heavy
def test_a_format_that_disagrees_is_failed_with_its_numbers_and_not_offered(small_run, monkeypatch):
    from core.results import export

    monkeypatch.setattr(export, "MAX_AGREEMENT_LOSS", -0.5)  # nothing can agree on 150% of the photos
    verification = export_run(small_run, "onnx", progress=lambda line: None)
    assert not verification.passed and verification.agreement == 1.0
    assert "not offered" in verification.message
    assert not zip_path(small_run, "onnx").exists()
    assert json.loads((export_folder(small_run, "onnx") / "verification.json").read_text())["passed"] is False


@pytest.mark.heavy
def test_an_export_of_an_earlier_model_is_not_shown_as_this_one(small_run):
    import os

    export_run(small_run, "keras", progress=lambda line: None)
    assert existing(small_run, "keras") is not None
    earlier = small_run.model_path.stat().st_mtime - 5  # the run was resumed since, and kept a new model
    os.utime(export_folder(small_run, "keras") / "verification.json", (earlier, earlier))
    assert existing(small_run, "keras") is None


@pytest.mark.heavy
def test_the_cli_exports_prints_the_table_copies_and_predicts_with_the_file(small_run, tmp_path, capsys):
    from core.commands.cli import main

    out = tmp_path / "model.zip"
    assert main(["export", str(small_run.path), "--format", "tflite", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "agrees" in printed and "tflite" in printed and "100.0%" in printed
    assert "tflite/model.tflite" in zipfile.ZipFile(out).namelist()

    photo = next(line.split(",", 2)[2] for line in small_run.splits_path.read_text().splitlines()[1:])
    junk = tmp_path / "notes.jpg"
    junk.write_text("not a photo")
    assert main(["predict", str(small_run.path), photo, str(junk), "--format", "tflite", "--top", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{photo}: ") and lines[0].rstrip().endswith("%"), lines
    assert lines[1].startswith(f"{junk}: left out, not an image"), lines


@pytest.mark.heavy
def test_the_cli_says_what_is_wrong_in_one_line(small_run, tmp_path, capsys, monkeypatch):
    from core.commands.cli import main
    from core.results import export

    assert main(["export", str(tmp_path), "--format", "onnx"]) == 2  # not a run directory
    assert main(["export", str(small_run.path), "--format", "coreml"]) == 2
    assert main(["predict", str(small_run.path), "photo.jpg", "--format", "savedmodel"]) == 2  # not made yet
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors), errors
    assert "is not a run directory" in errors[0] and "coreml" in errors[1]
    assert "python -m core export" in errors[2]

    monkeypatch.setattr(export, "MAX_AGREEMENT_LOSS", -0.5)
    shutil.rmtree(export_folder(small_run, "savedmodel"), ignore_errors=True)
    assert main(["export", str(small_run.path), "--format", "savedmodel", "--out", str(tmp_path / "x")]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.out and len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()  # what failed its check is not handed over


@pytest.mark.heavy
def test_without_node_the_web_export_says_why_in_words(small_run, monkeypatch):
    from core.results import export

    monkeypatch.setattr(export.shutil, "which", lambda name: None)
    with pytest.raises(export.ExportError, match="Node.js is not installed on this server"):
        export_run(small_run, "tfjs", progress=lambda line: None)
