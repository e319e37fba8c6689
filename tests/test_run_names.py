"""A run has a readable name from the start, which a person can change and annotate; its id never changes."""

from datetime import datetime

import pytest

from core.network.config import RunConfig
from core.network.recipes import RECIPES
from core.runs.directory import RunDirectory, run_title, runs_root
from core.runs.queue import start_run
from tests.conftest import tiny_config

WHEN = datetime(2026, 12, 2, 16, 46).timestamp()


def test_names_come_from_the_classes_the_network_and_the_time():
    config = RunConfig(data="/photos/hymenoptera_data")
    assert run_title(config, ["ants", "bees"], WHEN) == "Ants vs bees · MobileNetV2 · default · 2 Dec 16:46"
    quick = config.replace(**RECIPES["quick"].settings)
    assert run_title(quick, ["ants", "bees"], WHEN) == "Ants vs bees · MobileNetV2 · quick · 2 Dec 16:46"
    assert " · custom settings · " in run_title(config.replace(head_epochs=3), ["ants", "bees"], WHEN)
    assert run_title(config, ["cat", "dog", "bird"], WHEN).startswith("Cat, dog and bird · ")
    many = run_title(config.replace(backbone="efficientnet_b0"), [f"c{k}" for k in range(6)], WHEN)
    assert many == "Hymenoptera_data (6 classes) · EfficientNetB0 · default · 2 Dec 16:46"
    assert run_title(RunConfig(), [], WHEN).startswith("Built-in demo (shapes) · ")  # before the photos are read


def test_renaming_and_notes_keep_the_id(tmp_path):
    run = RunDirectory.create(tmp_path, tiny_config("demo"), title="Shapes · MobileNet · 2 Dec 16:46")
    assert run.title() == "Shapes · MobileNet · 2 Dec 16:46"
    run.set_about(name="  First try  ", notes="Before cleaning the labels.")
    again = RunDirectory(run.path)
    assert again.title() == "First try" and again.about().notes == "Before cleaning the labels." and again.id == run.id
    run.set_about(notes="")
    assert run.title() == "First try"


def test_two_runs_started_in_the_same_minute_get_different_names(monkeypatch):
    monkeypatch.setattr("core.runs.queue.spawn_worker", lambda run: None)
    first = start_run(tiny_config("demo"), title="Shapes · MobileNet · 2 Dec 16:46")
    second = start_run(tiny_config("demo"), title="Shapes · MobileNet · 2 Dec 16:46")
    assert (first.title(), second.title()) == (
        "Shapes · MobileNet · 2 Dec 16:46",
        "Shapes · MobileNet · 2 Dec 16:46 (2)",
    )
    assert runs_root() == first.path.parent


@pytest.mark.heavy
def test_the_train_page_renames_a_run(monkeypatch):
    from tests.test_pages import page

    run = RunDirectory.create(runs_root(), tiny_config("demo"), run_id="named", title="Old name")
    at = page("train")
    at.query_params["run"] = run.id
    at.run()
    at.text_input(key="name_named").set_value("Shapes, second try")
    at.text_area(key="notes_named").set_value("More epochs.")
    at.button(key="save_about_named").click().run()
    assert not at.exception
    assert run.title() == "Shapes, second try" and run.about().notes == "More epochs."
    assert any(m.value.startswith("### Shapes, second try") for m in at.markdown)
