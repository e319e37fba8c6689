"""Start is offered only when the run can work: every known reason it would fail, in plain words with the way out."""

from pathlib import Path

from core.data.datasets import scan_dataset
from core.network.config import RunConfig
from core.training.preflight import start_blockers
from tests.conftest import SHARED, needs_shared


def test_good_data_and_settings_with_downloadable_weights_can_start(make_dataset):
    report = scan_dataset(make_dataset({"red": 4, "green": 4}))
    assert start_blockers(RunConfig(), report, None, downloads_possible=True) == []


def test_one_class_and_unreadable_photos_are_fixed_on_the_data_page(make_dataset):
    (blocker,) = start_blockers(RunConfig(), scan_dataset(make_dataset({"red": 4})), None, True)
    assert "at least 2 classes" in blocker.problem and blocker.page == "data" and "Data page" in blocker.fix
    (blocker,) = start_blockers(RunConfig(), None, "photos.zip is not a zip file", True)
    assert blocker.problem == "photos.zip is not a zip file" and blocker.page == "data"


def test_settings_that_cannot_train_name_the_setting_in_words_and_its_page(make_dataset):
    report = scan_dataset(make_dataset({"red": 4, "green": 4}))
    (blocker,) = start_blockers(RunConfig(head_epochs=0, finetune_epochs=0), report, None, True)
    assert blocker.problem == "Head epochs and fine-tune epochs are both 0: nothing would train."
    assert blocker.page == "train" and "head_epochs" not in blocker.problem + blocker.fix
    (blocker,) = start_blockers(RunConfig(backbone="xception", image_size=64), report, None, True)
    assert "minimum of 71 px" in blocker.problem and blocker.page == "model"


def test_missing_weights_offline_name_the_ready_networks_and_keep_paths_for_administrators(make_dataset, monkeypatch):
    report = scan_dataset(make_dataset({"red": 4, "green": 4}))
    config = RunConfig(backbone="efficientnet_b0")
    (blocker,) = start_blockers(config, report, None, downloads_possible=False)
    assert blocker.problem.startswith("EfficientNetB0 needs its ImageNet weights") and blocker.page == "model"
    assert "upload the weights file for EfficientNetB0" in blocker.fix
    assert "efficientnetb0_notop.h5" in blocker.details and "/" not in blocker.problem + blocker.fix
    assert start_blockers(config, report, None, downloads_possible=True) == []  # online, Keras downloads it
    assert start_blockers(config.replace(weights="none"), report, None, False) == []
    (missing,) = start_blockers(config.replace(weights="/no/such/file.h5"), report, None, True)
    assert missing.problem == "The weights file file.h5 is not on the server."


@needs_shared
def test_the_networks_whose_weights_are_on_the_machine_are_offered(make_dataset, monkeypatch):
    monkeypatch.setenv("STUDIO_WEIGHTS_DIRS", str(Path(SHARED) / "weights"))
    report = scan_dataset(make_dataset({"red": 4, "green": 4}))
    (blocker,) = start_blockers(RunConfig(backbone="efficientnet_b0"), report, None, False)
    assert "(MobileNetV2 (width 0.35), MobileNetV2 (width 0.5), MobileNet (width 0.25))" in blocker.fix
    assert start_blockers(RunConfig(), report, None, False) == []
