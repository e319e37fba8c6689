"""Every page under Streamlit's AppTest, with the engine patched where it would train."""

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.network.config import RunConfig
from core.runs.directory import RunDirectory, list_runs, runs_root
from core.runs.status import ResumePoint, RunState
from core.sharing import access
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parent.parent


def page(name: str, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / "app_pages" / f"{name}.py"), default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def finished_run(data: str, state: str = "succeeded") -> RunDirectory:
    run = RunDirectory.create(runs_root(), tiny_config(data), run_id=f"finished-{state}")
    model_path = run.model_path
    import keras

    from core.network.backbones import BACKBONES
    from core.network.config import AugmentationConfig
    from core.network.model import build_classifier

    spec = BACKBONES["mobilenet_v2_0.35"]
    build_classifier(spec.build(32), spec, 2, 32, AugmentationConfig.off()).save(model_path)
    keras.backend.clear_session()
    evaluation = {
        "split": "test",
        "count": 4,
        "accuracy": 0.75,
        "loss": 0.5,
        "class_names": ["green", "red"],
        "confusion_matrix": [[2, 0], [1, 1]],
        "per_class": [
            {"class": "green", "precision": 0.67, "recall": 1.0, "f1": 0.8, "support": 2},
            {"class": "red", "precision": 1.0, "recall": 0.5, "f1": 0.67, "support": 2},
        ],
        "misclassified": [
            {
                "path": str(next(Path(data).rglob("*.png"))),
                "true": "red",
                "predicted": "green",
                "confidence": 0.9,
                "true_class_probability": 0.1,
            }
        ],
    }
    run.evaluation_path.write_text(json.dumps(evaluation))
    photos = sorted(Path(data).rglob("*.png"))
    run.splits_path.write_text("split,label,path\n" + "".join(f"test,{p.parent.name},{p}\n" for p in photos))
    run.update_status(
        state=RunState(state),
        message="Finished. 75.0% accuracy on 4 test images.",
        accuracy=0.75,
        weights_kind="none",
        finished=time.time(),
    )
    return run


def test_app_home_and_sidebar():
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Fine-Tune Studio"
    assert any("No training run yet" in c.value for c in at.sidebar.caption)


def test_home_page_links_the_four_steps():
    at = page("home").run()
    assert not at.exception
    shown = [c.value for c in at.caption]
    assert at.title[0].value == "Fine-Tune Studio"
    assert [step for step in ("1. Data", "2. Model", "3. Train", "4. Evaluate") if step in shown] == [
        "1. Data",
        "2. Model",
        "3. Train",
        "4. Evaluate",
    ]


@pytest.mark.heavy
def test_data_page_demo_shows_counts_and_samples():
    at = page("data").run()
    assert not at.exception
    assert [m.value for m in at.metric][:2] == ["240", "4"]
    assert at.session_state["draft"].data == "demo"


@pytest.mark.heavy
def test_data_page_folder_with_bad_files_lists_them(make_dataset, monkeypatch, tmp_path):
    root = tmp_path / "root"
    data = make_dataset({"red": 4, "green": 4}, root=root / "mine")
    (data / "red" / "page.jpg").write_text("<html>404</html>")
    monkeypatch.setenv("STUDIO_DATA_ROOT", str(root))
    at = page("data", data_kind="Folder on this server").run()
    at.selectbox(key="server_folder").set_value("mine").run()
    assert not at.exception
    assert at.metric[2].value == "1"  # left out
    assert any("1 file(s) left out" in e.label for e in at.expander)


@pytest.mark.heavy
def test_data_page_one_class_is_an_error_not_a_crash(make_dataset, monkeypatch, tmp_path):
    root = tmp_path / "root"
    make_dataset({"red": 4}, root=root / "single")
    monkeypatch.setenv("STUDIO_DATA_ROOT", str(root))
    at = page("data", data_kind="Folder on this server").run()
    at.selectbox(key="server_folder").set_value("single").run()
    assert not at.exception
    assert "at least 2 classes" in at.error[0].value


def test_data_page_empty_data_root_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_DATA_ROOT", str(tmp_path / "empty"))
    at = page("data", data_kind="Folder on this server").run()
    assert not at.exception and "no dataset folders on this server" in at.info[0].value
    assert str(tmp_path) not in at.info[0].value  # the server's paths are for its administrators
    assert any(str(tmp_path / "empty") in caption.value for caption in at.caption)  # inside "For administrators"


@pytest.mark.heavy
def test_model_page_offline_weights_warning_and_counts(monkeypatch):
    monkeypatch.setenv("STUDIO_OFFLINE", "1")
    at = page("model").run()
    assert not at.exception
    said = " ".join(w.value for w in at.warning)
    assert "are not on this machine, and it cannot download them" in said and "Networks ready here: none" in said
    assert at.get("file_uploader")  # the way out: upload the file
    labels = [m.label for m in at.metric]
    assert labels == ["Weights trained in phase 1", "Weights trained in phase 2"]
    phase1, phase2 = (int(m.value.replace(",", "")) for m in at.metric)
    assert 0 < phase1 < phase2
    assert str(at.session_state["draft"].unfreeze) == "auto"


@pytest.mark.heavy
def test_model_page_image_size_is_auto_and_says_what_it_chose():
    at = page("model").run()
    assert at.select_slider(key="image_size").value == 0 and at.session_state["draft"].image_size == 0
    # The demo's photos are 128 px: auto keeps the MobileNet's faster 160 px.
    assert any("160 px (automatic: the photos are typically 128 px" in c.value for c in at.caption)
    at.select_slider(key="image_size").set_value(224).run()
    assert not at.exception and at.session_state["draft"].image_size == 224
    assert not any("automatic" in c.value for c in at.caption)


@pytest.mark.heavy
def test_model_page_head_only_trains_the_head_alone():
    at = page("model").run()
    at.radio(key="unfreeze.kind").set_value("none").run()
    phase1, phase2 = (int(m.value.replace(",", "")) for m in at.metric)
    assert phase1 == phase2 and str(at.session_state["draft"].unfreeze) == "none"


@pytest.mark.heavy
def test_train_page_without_runs_invites_to_start():
    at = page("train").run()
    assert not at.exception
    assert "No run yet" in at.info[0].value


def test_train_page_start_queues_a_run_through_the_engine(monkeypatch):
    started = []

    def fake_start(config, root=None, title="", estimate=None):
        run = RunDirectory.create(runs_root(), config, run_id="from-the-page", title=title)
        started.append(config)
        return run

    monkeypatch.setattr("core.runs.queue.start_run", fake_start)
    monkeypatch.setattr("core.network.weights.downloads_possible", lambda timeout=2.0: True)  # as with internet
    monkeypatch.setattr("app_pages.task_views.task_if_done", lambda name, args: None)  # no speed measuring task
    at = page("train").run()
    at.button(key="start").click().run()
    assert not at.exception
    assert started and started[0].data == "demo"
    assert at.query_params["run"] in ("from-the-page", ["from-the-page"])
    assert any(m.value.startswith("### Circle, square, star and triangle · MobileNetV2 · ") for m in at.markdown)
    assert at.button(key="start").disabled  # the run it started is waiting: a second click starts nothing more
    assert len(started) == 1


@pytest.mark.heavy
def test_start_waits_for_a_deliberate_choice_while_this_tab_s_run_trains(monkeypatch):
    run = RunDirectory.create(runs_root(), tiny_config("demo"), run_id="busy", title="Shapes at noon")
    run.update_status(state=RunState.RUNNING)
    monkeypatch.setattr("core.network.weights.downloads_possible", lambda timeout=2.0: True)
    at = page("train").run()
    assert not at.exception
    assert any("“Shapes at noon” is still training" in i.value for i in at.info)
    assert at.button(key="start").disabled and at.button(key="start_quick").disabled
    at.checkbox(key="start_another_busy").check().run()
    assert not at.button(key="start").disabled and not at.button(key="start_quick").disabled


@pytest.mark.heavy
def test_train_page_shows_a_failed_run_with_its_message(make_dataset):
    run = RunDirectory.create(runs_root(), tiny_config("demo"), run_id="broken")
    run.update_status(
        state=RunState.FAILED, message="The loss became NaN (not a number). Try a learning rate 10 times lower."
    )
    at = page("train").run()
    assert not at.exception
    assert "NaN" in at.error[0].value


def test_evaluate_page_without_results():
    at = page("evaluate").run()
    assert not at.exception and "No run yet" in at.info[0].value


def test_evaluate_page_shows_metrics_matrix_and_download(make_dataset):
    run = finished_run(str(make_dataset({"red": 2, "green": 2})))
    at = page("evaluate").run()
    assert not at.exception
    assert at.metric[0].value == "75.0%"
    assert any("random weights" in w.value for w in at.warning)
    assert len(at.dataframe) == 1
    assert at.selectbox(key="eval_run").value == run.id


@pytest.mark.parametrize(
    "name", ["home", "data", "model", "train", "evaluate", "runs", "presentation", "sign_in", "closed"]
)
@pytest.mark.heavy
def test_every_page_renders_without_exception(name):
    assert not page(name).run().exception


@pytest.mark.heavy
def test_a_new_tab_starts_from_the_followed_run_settings(make_dataset):
    run = RunDirectory.create(runs_root(), tiny_config("demo", head_epochs=3, name="mine"), run_id="earlier")
    run.update_status(state=RunState.SUCCEEDED)
    at = page("train").run()
    assert not at.exception
    assert at.number_input(key="head_epochs").value == 3
    assert at.session_state["draft"].backbone == "mobilenet_0.25"


@pytest.mark.heavy
def test_opening_the_data_page_never_changes_the_chosen_data(make_dataset, monkeypatch, tmp_path):
    root = tmp_path / "root"
    make_dataset({"red": 3, "green": 3}, root=root / "aaa-first")
    chosen = make_dataset({"red": 3, "green": 3}, root=root / "mine")
    monkeypatch.setenv("STUDIO_DATA_ROOT", str(root))
    at = page("data", draft=RunConfig(data=str(chosen))).run()
    assert not at.exception
    assert at.radio(key="data_kind").value == "Folder on this server"
    assert at.selectbox(key="server_folder").value == "mine"
    assert at.session_state["draft"].data == str(chosen)


@pytest.mark.heavy
def test_a_draft_with_an_uploaded_zip_stays_on_it(make_dataset, tmp_path):
    import zipfile

    photos = make_dataset({"red": 3, "green": 3})
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in photos.rglob("*.png"):
            zf.write(path, f"{path.parent.name}/{path.name}")
    at = page("data", draft=RunConfig(data=str(archive))).run()
    assert not at.exception
    assert at.radio(key="data_kind").value == "Upload a zip"
    assert at.metric[0].value == "6" and at.session_state["draft"].data == str(archive)


@pytest.mark.heavy
def test_sample_download_offline_shows_the_way_out_and_success_uses_the_folder(make_dataset, monkeypatch):
    import app_pages.task_views

    real_task_result = app_pages.task_views.task_result

    def sample_answer(answer):
        return lambda name, args, message: answer if name == "sample" else real_task_result(name, args, message)

    offline = "Could not download the sample 'flowers'. This machine may be offline: upload it as a .zip"
    monkeypatch.setattr(app_pages.task_views, "task_result", sample_answer((None, offline)))
    at = page("data", data_kind="Download a sample set").run()
    at.button(key="use_sample").click().run()
    assert not at.exception
    assert "offline" in at.error[0].value and at.session_state["draft"].data == "demo"

    folder = make_dataset({"daisy": 3, "tulip": 3})
    monkeypatch.setattr(app_pages.task_views, "task_result", sample_answer(({"path": str(folder)}, None)))
    at = page("data", data_kind="Download a sample set").run()
    at.button(key="use_sample").click().run()
    assert not at.exception
    assert at.session_state["draft"].data == str(folder) and at.metric[1].value == "2"


@pytest.mark.heavy
def test_an_interrupted_run_offers_to_resume(monkeypatch):
    run = RunDirectory.create(runs_root(), tiny_config("demo"), run_id="killed")
    run.best_checkpoint_path.parent.mkdir(parents=True)
    run.last_checkpoint_path.write_bytes(b"checkpoint")
    run.update_status(state=RunState.RUNNING, pid=2**22 + 12345, pid_started=0.0, resume_point=ResumePoint(1, 3, 0))
    resumed = []
    monkeypatch.setattr("app_pages.run_views.resume_run", lambda r: resumed.append(r.id))
    at = page("train").run()
    assert not at.exception
    assert "ended unexpectedly" in at.warning[0].value and "resume" in at.warning[0].value
    at.button(key="resume_killed").click().run()
    assert resumed == ["killed"]


@pytest.mark.parametrize("run_id", ["..", "../runs", "/etc", "x/../../y"])
def test_a_run_name_from_the_url_never_walks_the_file_system(run_id):
    outside = runs_root().parent
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "config.json").write_text(tiny_config("demo").to_json())  # bait one level up
    at = page("train")
    at.query_params["run"] = run_id
    at.run()
    assert not at.exception
    assert "No run yet" in at.info[0].value  # the bait was not followed


@pytest.mark.heavy
def test_train_page_fast_mode_toggle_reaches_the_config_and_the_mode_is_shown(make_dataset):
    at = page("train").run()
    assert at.toggle(key="fast_mode").value is True
    at.toggle(key="fast_mode").set_value(False).run()
    assert at.session_state["draft"].fast_mode is False
    assert at.number_input(key="feature_views").disabled
    run = RunDirectory.create(runs_root(), tiny_config("demo"), run_id="fast")
    run.update_status(state=RunState.RUNNING, feature_mode="Fast mode: the frozen layers run once, on each photo once.")
    at = page("train").run()
    assert not at.exception
    assert any(caption.value.startswith("Fast mode") for caption in at.caption)


@pytest.mark.heavy
def test_a_server_folder_that_links_out_of_the_data_root_is_refused(make_dataset, monkeypatch, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    elsewhere = make_dataset({"red": 3, "green": 3}, root=tmp_path / "private")
    (root / "escape").symlink_to(elsewhere)
    monkeypatch.setenv("STUDIO_DATA_ROOT", str(root))
    at = page("data", data_kind="Folder on this server").run()
    at.selectbox(key="server_folder").set_value("escape").run()
    assert not at.exception
    assert "outside the data folder" in at.error[0].value
    assert "escape" not in at.session_state["draft"].data  # the choice did not change


def _verification(key: str, passed: bool, agreement: float = 1.0):
    from core.results.export_base import Verification
    from core.results.formats import FORMATS

    fmt = FORMATS[key]
    message = "Checked." if passed else "Checked: not close enough, not offered."
    return Verification(key, fmt.title, fmt.runtime, passed, agreement, 0.75, 0.75, 4, 2_800_000, 0.65, {}, message)


@pytest.mark.heavy
def test_take_the_model_away_offers_only_what_passed_its_check(make_dataset, monkeypatch):
    """Passed: numbers and a download. Failed: the numbers and no download. Under way: what it is doing.
    Not made: a button that starts it as a task, outside the dashboard's process."""
    import dataclasses
    import os

    import app_pages.take_away
    from core.base.processes import ProcessRecord
    from core.base.tasks import result_path
    from core.results.export import export_folder, progress_path, zip_path

    run = finished_run(str(make_dataset({"red": 2, "green": 2})))
    for key, passed in (("tflite", True), ("tflite-int8", False)):
        export_folder(run, key).mkdir(parents=True)
        verification = json.dumps(dataclasses.asdict(_verification(key, passed, 1.0 if passed else 0.5)))
        (export_folder(run, key) / "verification.json").write_text(verification)
    zip_path(run, "tflite").write_bytes(b"PK\x05\x06" + bytes(18))
    making = result_path("export", {"run_dir": str(run.path), "format": "onnx"})
    making.parent.mkdir(parents=True, exist_ok=True)
    me = ProcessRecord.of(os.getpid())
    making.with_suffix(".pid").write_text(json.dumps([me.pid, me.started]))
    progress_path(run, "onnx").write_text("Checking it with onnxruntime on 4 photos")
    started = []
    monkeypatch.setattr(app_pages.take_away, "start_task", lambda name, args: started.append((name, args)))

    at = page("evaluate").run()
    assert not at.exception
    downloads = at.get("download_button")
    exports = [
        d.proto.label
        for d in downloads
        if d.proto.label not in ("Download the report (HTML)", "Keep this run as a file")
    ]
    assert exports == ["Download (.zip)"]
    assert any("Same answer as the Keras model on 100.0% of 4 test photos" in s.value for s in at.success)
    failed = [e.value for e in at.error if "Failed its check" in e.value]
    assert len(failed) == 1 and "50.0% of 4 test photos" in failed[0]
    assert any("Checking it with onnxruntime on 4 photos" in i.value for i in at.info)
    assert at.button(key="make_keras").label == "Make it"
    assert not [b for b in at.button if b.key in ("make_tflite", "make_tflite-int8", "make_onnx")]
    at.button(key="make_keras").click().run()
    assert started == [("export", {"run_dir": str(run.path), "format": "keras"})]


@pytest.mark.heavy
def test_the_mistakes_turn_into_heatmaps_for_its_answer_or_the_right_class(make_dataset, monkeypatch, tmp_path):
    import numpy as np
    from PIL import Image

    import app_pages.photo_views

    run = finished_run(str(make_dataset({"red": 2, "green": 2})))
    overlay = tmp_path / "overlay.png"
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(overlay)
    asked = []

    def explain(name, args, message):
        asked.append((name, args["class_names"]))
        if args["class_names"][0] is None:
            answers = [{"path": p, "heatmap": str(overlay), "top": [["green", 0.9]]} for p in args["image_paths"]]
        else:  # not worth painting: said in words under the photo
            unsure = "no heatmap: the model is unsure of this photo (its top answer is 41%)"
            answers = [{"path": p, "not_shown": unsure, "top": [["green", 0.41]]} for p in args["image_paths"]]
        return {"explanations": answers}, None

    monkeypatch.setattr(app_pages.photo_views, "task_result", explain)
    at = page("evaluate").run()
    assert not at.exception and not asked  # photos first: nothing is computed until asked
    at.button_group(key="mistake_view").set_value("Heatmap of its answer").run()
    assert not at.exception and asked == [("explain", [None])]
    assert any(  # the method that made the picture, in one sentence
        c.value.startswith("Made by LayerCAM at two more detailed layers: warm colours")  # MobileNet v1, 32 px
        and "pushed the model towards that class" in c.value
        for c in at.caption
    )
    at.button_group(key="mistake_view").set_value("Heatmap of the right class").run()
    assert asked[-1] == ("explain", ["red"])  # the true class of the mistake
    captions = [caption for image in at.get("image") for caption in image.captions]
    assert any(c.endswith(" · no heatmap: the model is unsure of this photo (its top answer is 41%)") for c in captions)
    assert run.evaluation()["misclassified"][0]["true"] == "red"


@pytest.mark.heavy
def test_making_a_dataset_here_starts_with_its_classes(isolated_workspace):
    at = page("data").run()
    at.radio(key="data_kind").set_value("Make one here").run()
    assert not at.exception and any("Add the first class" in i.value for i in at.info)
    at.text_input(key="made_name").input("Hand signs").run()
    for name in ("thumbs up", "wave"):
        at.text_input(key="made_new_class").input(name).run()
        at.button(key="made_add_class").click().run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["thumbs-up (0)", "wave (0)"]
    assert at.session_state["draft"].data.endswith("made/Hand-signs")


@pytest.mark.heavy
def test_a_photo_review_decision_is_kept_shown_on_the_data_page_and_undone_there(make_dataset, monkeypatch):
    import app_pages.photo_views
    import app_pages.review_views
    from core.data.decisions import decisions_about

    data = make_dataset({"red": 3, "green": 3})
    run = finished_run(str(data))
    (run.path / "dataset.json").write_text(json.dumps({"root": str(data)}))
    doubtful = str(data / "red" / "red_01.png")
    photo = {
        "path": doubtful,
        "split": "training",
        "given": "red",
        "suggested": "green",
        "quality": 0.1,
        "confidence": 0.8,
        "issue": "label",
        "outlier_score": 0.9,
    }
    odd = dict(photo, path=str(data / "green" / "green_02.png"), given="**green**", issue="outlier")
    asked = []

    def answer(name, args, message):
        asked.append(name)
        if name == "review":
            return {
                "photos": [photo, odd],
                "reviewed": 6,
                "flagged": {"label": 1, "outlier": 1},
                "judged_by": "the pretrained network",
                "pairs": [
                    {
                        "paths": [doubtful, doubtful],
                        "splits": ["training", "test"],
                        "labels": ["red", "red"],
                        "similarity": 0.99,
                    }
                ],
            }, None
        if name == "collect":
            curves = {"fractions": [0.25, 0.5, 0.75, 1.0], "curves": {"red": [0.5, 0.6, 0.7, 0.8]}, "draws": 3}
            return {
                "curves": curves,
                "pairs": [],
                "words": ["More photos of “red” would probably help: *still*."],
            }, None
        return {"explanations": [{"path": doubtful, "heatmap": str(data / "red" / "red_00.png")}]}, None

    monkeypatch.setattr(app_pages.photo_views, "task_result", answer)
    monkeypatch.setattr(app_pages.review_views, "task_result", answer)
    at = page("evaluate").run()
    at.toggle(key="review_on").set_value(True).run()
    captions = [c.value for c in at.caption]
    assert (
        not at.exception and "training · labelled **red** · the other photos suggest **green** (80% sure)" in captions
    )
    assert r"training · labelled **\*\*green\*\*** · unlike the photos of every class" in captions  # escaped
    assert (
        "6 photos judged by the pretrained network: 1 probably in the wrong class and 1 unlike the rest, below."
        in captions
    )
    assert any("99.0% alike" in c.value for c in at.caption)  # a near-copy, shown as a pair
    at.toggle(key="review_heat").set_value(True).run()
    assert asked == ["review", "review", "explain"] and not at.exception
    at.toggle(key="collect_on").set_value(True).run()  # what to collect next: in words (escaped), and the curves
    assert not at.exception and r"More photos of “red” would probably help: \*still\*." in [
        m.value for m in at.markdown
    ]
    assert at.get("plotly_chart") and asked[-1] == "collect"
    at.toggle(key="collect_on").set_value(False).run()
    decision = [s for s in at.selectbox if s.key and s.key.startswith("review_")][0]  # the first photo
    assert decision.value == "keep" and decision.options == ["Keep as red", "Move to green", "Leave out"]
    decision.set_value("move:green").run()
    assert [(d.action, d.to) for d in decisions_about(data).values()] == [("move", "green")]
    assert any("1 photo moved to another class" in i.value for i in at.info)

    at = page("data", draft=RunConfig(data=str(data))).run()
    assert not at.exception
    assert any("Your decisions: 1 photo moved to another class" in e.label for e in at.expander)
    assert at.metric[0].value == "6"
    at.button(key="undo_review_0").click().run()
    assert decisions_about(data) == {} and not any("Your decisions" in e.label for e in at.expander)


def _app(**query) -> AppTest:
    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=60)
    for key, value in query.items():
        at.query_params[key] = value
    return at


@pytest.mark.heavy
def test_runs_page_lists_compares_renames_and_deletes(make_dataset):
    from tests.conftest import recorded_run

    assert "No runs yet" in page("runs").run().info[0].value
    data = make_dataset({"red": 6, "green": 6})
    recorded_run(runs_root(), "older", data, seed=1).set_about(name="Older")
    recorded_run(runs_root(), "newer", data, seed=2, batch_size=4).set_about(name="Newer", notes="bigger steps")
    at = page("runs").run()
    assert not at.exception
    assert at.dataframe(key="runs_table").value["name"].tolist() == ["Newer", "Older"]  # newest first
    at.text_input(key="runs_find").input("bigger").run()
    assert at.dataframe(key="runs_table").value["name"].tolist() == ["Newer"]
    at.text_input(key="runs_find").input("").run()

    at.session_state["runs_table"] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    at.run()
    assert at.subheader[0].value == "Comparing 2 runs"
    _, facts, settings = at.dataframe  # the runs, then the comparison's facts and settings
    differing = settings.value
    assert differing.index.tolist() == ["Batch size"] and differing.loc["Batch size"].tolist() == ["4", "8"]
    assert facts.value.loc["state"].tolist() == ["Finished", "Finished"]
    from core.base.markup import md_literal
    from core.results.compare import paired_tests

    expected = paired_tests(list_runs())  # both were tested on the same photos: is the difference more than chance?
    assert len(expected) == 1 and md_literal(expected[0]) in [m.value for m in at.markdown]

    at.session_state["runs_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert at.subheader[0].value == "Older"
    assert at.button(key="runs_delete").disabled  # not before saying yes
    at.checkbox(key="runs_delete_sure_older").check().run()
    at.button(key="runs_delete").click().run()
    assert not at.exception
    assert [r.id for r in list_runs()] == ["newer"]
    assert at.dataframe(key="runs_table").value["name"].tolist() == ["Newer"]


def test_evaluate_page_makes_a_read_only_link_and_turns_it_off(make_dataset):
    from core.sharing import links as sharing
    from tests.conftest import recorded_run

    run = recorded_run(runs_root(), "shown", make_dataset({"red": 6, "green": 6}))
    at = page("evaluate").run()
    assert at.get("download_button")  # the report, and the run kept as a file
    at.button(key=f"make_share_{run.id}").click().run()
    link = at.code[0].value
    assert "?share=" in link
    assert sharing.open_link(link.split("share=", 1)[1]).run == run.id
    revoke = [b for b in at.button if b.key and b.key.startswith("revoke_")]
    assert len(revoke) == 1
    revoke[0].click().run()
    assert not at.code and not [b for b in at.button if b.key and b.key.startswith("revoke_")]
    with pytest.raises(sharing.ShareRefused, match="turned off"):
        sharing.open_link(link.split("share=", 1)[1])


def test_a_shared_link_shows_its_run_only_and_nothing_to_change(make_dataset, monkeypatch):
    from core.sharing import links as sharing
    from tests.conftest import recorded_run

    monkeypatch.setenv("STUDIO_PASSWORD", "team secret")  # a link needs no password
    data = make_dataset({"red": 6, "green": 6})
    shown = recorded_run(runs_root(), "shown", data, seed=1)
    recorded_run(runs_root(), "private", data, seed=2)
    token = sharing.make_link(shown.id)
    at = _app(share=token, run="private").run()
    assert not at.exception
    assert at.title[0].value == shown.title()
    assert at.metric[0].value == f"{shown.evaluation()['accuracy']:.1%}"
    assert not at.sidebar.markdown and not at.sidebar.button  # no navigation, no project, no other run
    assert not at.selectbox and not at.text_input  # nothing to pick or change
    assert not at.button  # no control at all: only the download and the photo box
    assert [d.label for d in at.get("download_button")] == ["Download the report (HTML)"]


@pytest.mark.parametrize("case", ["altered", "forged", "revoked", "deleted"])
def test_a_bad_shared_link_is_refused_in_plain_words(make_dataset, case):
    import base64
    import json

    from core.sharing import links as sharing
    from core.sharing.run_files import delete_run
    from tests.conftest import recorded_run

    data = make_dataset({"red": 6, "green": 6})
    shown = recorded_run(runs_root(), "shown", data, seed=1)
    recorded_run(runs_root(), "private", data, seed=2)
    sharing.make_link("private")
    token = sharing.make_link(shown.id)
    payload, signature = token.split(".")
    if case == "altered":  # the other run's id, with this link's signature
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["run"] = "private"
        token = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=") + "." + signature
    elif case == "forged":
        token = payload + "." + signature[::-1]
    elif case == "revoked":
        sharing.revoke(sharing.open_link(token).link)
    else:
        delete_run(shown)
    at = _app(share=token).run()
    assert not at.exception
    assert at.title[0].value == "Fine-Tune Studio" and len(at.error) == 1
    assert "Ask" in at.error[0].value
    assert not at.metric and not at.get("plotly_chart")


@pytest.mark.heavy
def test_a_password_closes_the_dashboard_until_it_is_given(monkeypatch):
    monkeypatch.setenv("STUDIO_PASSWORD", "team secret")
    at = _app().run()
    assert not at.exception
    assert "private" in at.markdown[0].value and not at.sidebar.markdown
    at.text_input(key="password_given").input("team secre")
    at.button[0].click().run()
    assert "not right" in at.error[0].value and not at.sidebar.markdown
    at.text_input(key="password_given").input("team secret")
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Fine-Tune Studio" and "Your project" in [m.value for m in at.sidebar.markdown][0:1][0]


def test_another_computer_gets_the_closed_door_without_a_password(monkeypatch, make_dataset):
    finished_run(str(make_dataset({"red": 2, "green": 2})))
    monkeypatch.setenv("STUDIO_OWNER_ADDRESSES", "192.0.2.1")  # this test's connection is not the owner's
    at = _app().run()
    assert not at.exception
    assert "open only on the computer it runs on" in at.info[0].value
    assert not at.sidebar.markdown and not at.button and not at.metric


@pytest.mark.heavy
@pytest.mark.parametrize("path", ["home", "data", "model", "train", "evaluate", "runs"])
def test_a_link_to_a_missing_run_says_so_on_every_page(make_dataset, path):
    finished_run(str(make_dataset({"red": 2, "green": 2})))
    at = _app().run()
    if path != "home":
        at.switch_page(f"app_pages/{path}.py")
    at.query_params["run"] = "gone-run"  # the address someone opened
    at.run()
    assert not at.exception
    assert [w.value for w in at.warning if "There is no run called “gone-run”" in w.value]


def test_sign_out_ends_the_session(monkeypatch):
    monkeypatch.setenv("STUDIO_PASSWORD", "team secret")
    at = _app().run()
    at.text_input(key="password_given").input("team secret")
    at.button[0].click().run()
    token = at.session_state["session_token"]
    assert access.session_valid(token, "team secret")
    at.button(key="sign_out").click().run()
    assert not at.exception and "private" in at.markdown[0].value
    assert not access.session_valid(token, "team secret")


def test_a_run_opened_from_a_file_without_its_photos_says_so_and_offers_no_export(make_dataset, tmp_path):
    import shutil

    from core.sharing.run_files import pack_run, unpack_run
    from tests.conftest import recorded_run

    photos = make_dataset({"red": 6, "green": 6})
    kept = pack_run(recorded_run(tmp_path / "elsewhere", "travelled", photos))
    shutil.rmtree(photos)  # the photos stayed on the other server
    unpack_run(kept, runs_root())
    at = page("evaluate").run()
    assert not at.exception
    assert any("not on this server" in c.value for c in at.caption)  # the mistakes
    assert any("checked on this run's own photos" in i.value for i in at.info)
    assert not [b for b in at.button if b.key and b.key.startswith("make_") and not b.key.startswith("make_share")]
    assert at.get("download_button")  # the report and the run file still are


@pytest.mark.heavy
def test_while_phase_2_runs_the_first_model_is_shown_and_said_to_be_the_first(make_dataset):
    from core.runs.status import Stage
    from tests.conftest import recorded_run

    run = recorded_run(runs_root(), "tuning", make_dataset({"red": 6, "green": 6}))
    first = {"val_accuracy": 0.96, "accuracy": run.evaluation()["accuracy"], "split": "test", "count": 8}
    run.update_status(state=RunState.RUNNING, stage=Stage.FINETUNE, first_model=first, kept="first")
    at = page("evaluate").run()
    assert not at.exception
    assert any(s.value.startswith("A first model is ready: 96% on validation photos.") for s in at.success)
    assert at.metric[0].value == f"{first['accuracy']:.1%}"
    assert any("first model's results" in c.value for c in at.caption)
    train = page("train").run()
    assert any(s.value.startswith("A first model is ready: 96%") for s in train.success)
    run.update_status(state=RunState.FAILED, message="The machine ran out of memory.")
    failed = page("evaluate").run()
    assert any("Fine-tuning did not finish (failed" in c.value for c in failed.caption)
    assert not failed.success  # no "first model is ready" once the run has ended


def test_train_page_quick_first_model_is_one_click_with_the_chosen_network(monkeypatch):
    started = []

    def fake_start(config, root=None, title="", estimate=None):
        started.append(config)
        return RunDirectory.create(runs_root(), config, run_id="quick-from-the-page", title=title)

    monkeypatch.setattr("core.runs.queue.start_run", fake_start)
    monkeypatch.setattr("core.network.weights.downloads_possible", lambda timeout=2.0: True)
    monkeypatch.setattr("app_pages.task_views.task_if_done", lambda name, args: None)  # no speed measuring task
    at = page("train", draft=RunConfig(backbone="mobilenet_v2_0.35")).run()
    at.button(key="start_quick").click().run()
    assert not at.exception
    (config,) = started
    assert (config.backbone, config.finetune_epochs, config.feature_views, config.image_size) == (
        "mobilenet_v2_0.35",
        0,
        1,
        224,
    )


@pytest.mark.heavy
def test_train_page_hardware_settings_reach_the_config_and_the_devices_are_shown(monkeypatch):
    at = page("train").run()
    assert at.selectbox(key="devices").value == "all" and at.selectbox(key="precision").value == "auto"
    at.selectbox(key="devices").set_value("2").run()
    at.selectbox(key="precision").set_value("float32").run()
    assert at.session_state["draft"].devices == "2" and at.session_state["draft"].precision == "float32"
    assert any(c.value.startswith("Runs train on this server, one at a time") for c in at.caption)
    run = RunDirectory.create(runs_root(), tiny_config("demo"), run_id="mirrored", title="Two at once")
    placement = {
        "devices": ["GPU:0", "GPU:1"],
        "replicas": 2,
        "strategy": "MirroredStrategy",
        "precision": "mixed_float16",
        "precision_why": "auto",
        "batch_per_device": 32,
        "global_batch": 64,
        "learning_rate_scale": 1.4142,
    }
    run.update_status(state=RunState.RUNNING, feature_mode="Fast mode.", placement=placement)
    monkeypatch.setenv("STUDIO_RAY_ADDRESS", "head.lab:6379")
    at = page("train").run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    # The live panel in plain words, the devices' names one click away.
    assert "Fast mode. Training on 2 graphics cards (GPUs) at once, 64 photos at a time." in captions
    assert any(c.startswith("Devices: 2 devices at once (GPU:0, GPU:1, MirroredStrategy)") for c in captions)
    assert "Details for specialists" in [e.label for e in at.expander]
    where = next(c for c in captions if c.startswith("Runs are sent to the Ray cluster at head.lab:6379"))
    assert 'The last run ("Two at once") trained on 2 devices at once' in where and "rates ×1.41 for" in where


@pytest.mark.heavy  # the page draws its augmentation preview in a task process
def test_data_page_offers_photos_without_labels_once_a_run_has_trained_on_them(make_dataset):
    from tests.conftest import recorded_run

    data = make_dataset({"red": 4, "green": 4})
    at = page("data", draft=RunConfig(data=str(data))).run()
    assert not at.exception and "Photos without labels" in [h.value for h in at.subheader]
    assert any(c.value.startswith("Once a run has trained on these photos") for c in at.caption)
    assert not at.get("file_uploader")
    recorded_run(runs_root(), "trained", data)  # its dataset.json names these photos
    at = page("data", draft=RunConfig(data=str(data))).run()
    assert not at.exception and [u.label for u in at.get("file_uploader")] == [
        "Photos without labels, or a zip of them"
    ]


def test_suggested_photos_with_hostile_names_are_shown_escaped_and_added_only_from_the_upload_folder(make_dataset):
    from core.data.decisions import decisions_about, unsorted_home
    from tests.conftest import CLASS_COLOURS, write_image

    data = make_dataset({"red": 4, "green": 4})
    photo = write_image(unsorted_home() / "upload" / "new.png", CLASS_COLOURS["red"])
    hostile = "**red** [x](http://evil.example)"

    def view(root: str, path: str, name: str) -> None:
        from app_pages.unsorted_views import _suggestions

        _suggestions(root, [{"path": path, "suggested": name, "confidence": 0.9, "unlike_all": True, "error": ""}])

    at = AppTest.from_function(view, args=(str(data), str(photo), hostile), default_timeout=60).run()
    assert not at.exception
    # shown as typed: the emphasis and the link's brackets escaped (`md_literal`), so neither forms
    assert at.markdown[0].value == r"**\*\*red\*\* \[x\](http://evil.example)**: 1 photo, 0 added"
    assert "90% sure · unlike every class" in [c.value for c in at.caption]
    at.button(key="unsorted_all_0").click().run()
    assert [(d.action, d.to) for d in decisions_about(data).values()] == [("add", hostile)]


def test_train_page_gives_the_time_if_fine_tuning_stops_early_and_says_what_a_run_decided(monkeypatch):
    from core.training.estimate import StageSpeeds

    speeds = StageSpeeds(4.0, 0.001, 0.02, 0.01, 0.002, 0.2, 0.5, 4.0, 0.2, 1.0, 0.1, 0.15, 0.01).__dict__
    monkeypatch.setattr("app_pages.task_views.task_if_done", lambda name, args: speeds)
    monkeypatch.setattr("core.network.weights.downloads_possible", lambda timeout=2.0: True)
    monkeypatch.setattr("core.network.choices.BEST_NEEDS_VALIDATION", 10)  # the demo's validation photos suffice
    run = RunDirectory.create(runs_root(), RunConfig(data="demo"), run_id="judged")
    decision = (
        "Fine-tuning stopped after 3 of 15 epochs: it did not improve on the new head alone (97.0% of the "
        "validation photos at best, against 97.4%), so it ended there."
    )
    run.update_status(state=RunState.SUCCEEDED, finetune_decision=decision)
    at = page("train").run()
    assert not at.exception
    assert decision in [i.value for i in at.info]
    said = " ".join(c.value for c in at.caption)
    assert "Expected to take **about " in said
    assert "If the new head alone proves enough, **as little as " in said
    assert "skipped where the head already tells apart 90% of its training photos, and ends once 3 epochs" in said
    monkeypatch.setattr("core.network.choices.BEST_NEEDS_VALIDATION", 200)  # too few: every epoch runs
    at = page("train").run()
    assert "Expected to take **about " in " ".join(c.value for c in at.caption)
    assert "as little as" not in " ".join(c.value for c in at.caption)
