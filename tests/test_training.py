"""Training runs end to end on tiny data: outputs, stop, NaN, bad data, repeatability, learning."""

import csv
import json

import keras
import pytest

from core.network.freezing import UnfreezePlan
from core.runs.directory import RunDirectory
from core.runs.status import RunState, Stage
from core.training.worker import train_run
from tests.conftest import tiny_config

EXPECTED_FILES = {
    "config.json",
    "status.json",
    "events.jsonl",
    "history.csv",
    "model.keras",
    "evaluation.json",
    "dataset.json",
    "splits.csv",
    "checkpoints",
}


def _run(tmp_path, config, name="run"):
    run = RunDirectory.create(tmp_path / "runs", config, run_id=name)
    lines = []
    state = train_run(run, echo=lines.append)
    return run, state, lines


@pytest.mark.heavy
def test_a_run_writes_everything_the_pages_read(make_dataset, tmp_path):
    data = make_dataset({"red": 8, "green": 8, "blue": 8})
    (data / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    run, state, lines = _run(tmp_path, tiny_config(str(data)))
    assert state is RunState.SUCCEEDED, run.status()
    assert {p.name for p in run.path.iterdir()} >= EXPECTED_FILES
    status = run.status()
    assert status.state is RunState.SUCCEEDED and status.stage is Stage.DONE
    assert status.trainable_params_phase2 > status.trainable_params_phase1 and "random weights" in status.weights
    history = list(csv.DictReader(open(run.history_path)))
    assert [(r["phase"], r["epoch"]) for r in history] == [("1", "1"), ("2", "2")]
    evaluation = run.evaluation()
    assert evaluation["class_names"] == ["blue", "green", "red"]
    assert evaluation["split"] == "test" and sum(map(sum, evaluation["confusion_matrix"])) == evaluation["count"]
    dataset = json.loads(run.dataset_path.read_text())
    assert [s["path"].endswith("broken.jpg") for s in dataset["skipped"]] == [True]
    splits = list(csv.DictReader(open(run.splits_path)))
    assert len(splits) == 24 and {r["split"] for r in splits} == {"train", "val", "test"}
    events = [json.loads(line) for line in open(run.events_path)]
    assert {e["type"] for e in events} >= {"batch", "epoch", "phase_start"}
    assert keras.models.load_model(run.model_path, safe_mode=True).output_shape == (None, 3)


def test_stop_requested_before_start_ends_as_stopped(make_dataset, tmp_path):
    run = RunDirectory.create(tmp_path / "runs", tiny_config(str(make_dataset({"red": 4, "green": 4}))))
    run.request_stop()
    assert train_run(run, echo=lambda _: None) is RunState.STOPPED
    assert run.status().state is RunState.STOPPED


@pytest.mark.heavy
@pytest.mark.parametrize("stop_epoch, phase", [(2, 1), (4, 2)])
def test_stop_mid_epoch_keeps_the_best_checkpoint_and_evaluates(make_dataset, tmp_path, monkeypatch, stop_epoch, phase):
    """Stop pressed after the first batch of an epoch, in either phase: it ends after that batch."""
    from core.training import callbacks

    original = callbacks.EventStream.on_train_batch_end

    def press_stop_mid_epoch(self, batch, logs=None):
        original(self, batch, logs)
        if self._epoch == stop_epoch and batch == 0:
            (self.events_path.parent / "stop").write_text("user pressed stop")

    monkeypatch.setattr(callbacks.EventStream, "on_train_batch_end", press_stop_mid_epoch)
    config = tiny_config(str(make_dataset({"red": 12, "green": 12})), batch_size=4, head_epochs=3, finetune_epochs=3)
    run, state, _ = _run(tmp_path, config)
    assert state == "stopped"
    history = list(csv.DictReader(open(run.history_path)))
    assert len(history) == stop_epoch and history[-1]["phase"] == str(phase)
    batches = [json.loads(line) for line in open(run.events_path) if '"batch"' in line]
    last_epoch = [event for event in batches if event["epoch"] == stop_epoch]
    assert max(event["batch"] for event in last_epoch) < last_epoch[0]["steps"]  # it did not finish the epoch
    assert run.best_checkpoint_path.exists() and run.evaluation() is not None
    status = run.status()
    assert status.state is RunState.STOPPED and "Stopped by request" in status.message


@pytest.mark.heavy
def test_nan_loss_fails_with_advice(make_dataset, tmp_path, monkeypatch):
    from core.network import model as model_module

    def diverging_compile(model, optimizer, learning_rate, average_over=0):
        model.compile(optimizer="sgd", loss=lambda y, p: keras.ops.log(p[:, 0] - 2.0))  # log of a negative

    monkeypatch.setattr(model_module, "compile_for_phase", diverging_compile)
    data = str(make_dataset({"red": 6, "green": 6}))
    run, state, _ = _run(tmp_path, tiny_config(data, average_weights=False))  # its plain SGD keeps no average
    assert state is RunState.FAILED
    message = run.status().message
    assert "NaN" in message and "learning rate" in message and "lower" in message


def test_one_class_fails_as_bad_input(make_dataset, tmp_path):
    run, state, _ = _run(tmp_path, tiny_config(str(make_dataset({"red": 6}))))
    assert state is RunState.FAILED
    assert run.status().bad_input and "at least 2 classes" in run.status().message


def test_unknown_block_fails_naming_the_blocks(make_dataset, tmp_path):
    config = tiny_config(str(make_dataset({"red": 6, "green": 6})), unfreeze=UnfreezePlan.parse("block:nope"))
    run, state, _ = _run(tmp_path, config)
    assert state is RunState.FAILED and "block_13" in run.status().message and run.status().bad_input


@pytest.mark.heavy
def test_batch_larger_than_the_dataset_still_trains(make_dataset, tmp_path):
    config = tiny_config(str(make_dataset({"red": 4, "green": 4})), batch_size=512, finetune_epochs=0)
    run, state, _ = _run(tmp_path, config)
    assert state is RunState.SUCCEEDED and run.status().batch_size <= 8


@pytest.mark.heavy
def test_same_seed_same_run(make_dataset, tmp_path):
    data = str(make_dataset({"red": 6, "green": 6}))
    first, _, _ = _run(tmp_path, tiny_config(data, finetune_epochs=0), name="a")
    second, _, _ = _run(tmp_path, tiny_config(data, finetune_epochs=0), name="b")
    assert first.splits_path.read_text() == second.splits_path.read_text()
    loss_a = float(list(csv.DictReader(open(first.history_path)))[0]["loss"])
    loss_b = float(list(csv.DictReader(open(second.history_path)))[0]["loss"])
    assert loss_a == pytest.approx(loss_b, rel=1e-3)


def _tiny_backbone(include_top=False, weights=None, input_shape=(32, 32, 3)):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(32, 3, padding="same", name="block_1_conv")(inputs)
    x = keras.layers.BatchNormalization(name="block_1_bn")(x)
    x = keras.layers.ReLU(name="block_1_relu")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", name="block_2_conv")(x)
    return keras.Model(inputs, x, name="tiny")


def _use_tiny_backbone(monkeypatch) -> str:
    """Register the two-layer stand-in backbone; returns its key."""
    import dataclasses

    from core.network.backbones import BACKBONES

    spec = dataclasses.replace(
        BACKBONES["mobilenet_v2_0.35"],
        key="tiny",
        constructor="TinyTestNet",
        preprocessing="tf",
        block_rules=((r"^block_(\d+)_", "block_{}"),),
        recommended_unfreeze="block_2",
        kwargs={},
    )
    monkeypatch.setitem(BACKBONES, "tiny", spec)
    monkeypatch.setattr(keras.applications, "TinyTestNet", _tiny_backbone, raising=False)
    return "tiny"


@pytest.mark.heavy
def test_learning_happens_on_separable_images(make_dataset, tmp_path, monkeypatch):
    """fastai's kind of check: after a few epochs the loss is lower and accuracy well above chance.

    A two-layer stand-in backbone keeps it fast, and with 32 random channels its features
    keep every colour (with 8, one class sometimes had no live feature at all), so this
    tests the training loop (data, head, phases), not ImageNet.
    """
    _use_tiny_backbone(monkeypatch)
    data = make_dataset({"red": 30, "green": 30, "blue": 30})
    config = tiny_config(
        str(data), backbone="tiny", head_epochs=10, finetune_epochs=2, head_learning_rate=0.03, test_fraction=0.3
    )
    run, state, _ = _run(tmp_path, config)
    assert state is RunState.SUCCEEDED, run.status()
    history = list(csv.DictReader(open(run.history_path)))
    assert [r["phase"] for r in history] == ["1"] * 10 + ["2"] * 2
    assert float(history[-1]["loss"]) < float(history[0]["loss"])
    assert run.evaluation()["accuracy"] >= 0.9  # chance is 1/3; 27 test images


@pytest.mark.heavy
def test_cosine_decay_warms_phase_2_up_then_lowers_each_phase_rate_to_a_hundredth(make_dataset, tmp_path, monkeypatch):
    data = str(make_dataset({"red": 6, "green": 6}))
    config = tiny_config(
        data, head_epochs=4, finetune_epochs=3, head_learning_rate=0.01, finetune_learning_rate=0.001, cosine_decay=True
    )
    run, state, _ = _run(tmp_path, config.replace(backbone=_use_tiny_backbone(monkeypatch)))
    assert state is RunState.SUCCEEDED, run.status()
    rows = list(csv.DictReader(open(run.history_path)))
    # The rate logged is the one of each epoch's last batch (one batch an epoch here).
    rates = {phase: [float(r["learning_rate"]) for r in rows if r["phase"] == phase] for phase in "12"}
    assert rates["1"] == pytest.approx([0.01, 0.007525, 0.002575, 0.0001], rel=1e-4)
    assert rates["2"] == pytest.approx([0.0001, 0.001, 0.00001], rel=1e-4)  # a tenth, warmed up to the peak, then down


def test_the_cosine_schedule_warms_up_from_a_tenth_and_resumes_on_its_curve():
    from core.training.callbacks import ResumableSchedule, cosine_schedule

    schedule = ResumableSchedule(cosine_schedule(1.0, 40, 10), phase_start=5, steps_per_epoch=10, total_steps=40)
    rates = [schedule.rate(step) for step in range(40)]
    assert rates[0] == pytest.approx(0.1) and rates[10] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(rates[:11], rates[1:11]))  # warm-up rises
    assert all(a > b for a, b in zip(rates[10:], rates[11:]))  # then falls
    assert rates[-1] == pytest.approx(0.01)

    class Optimizer:
        learning_rate = None

    class Model:
        optimizer = Optimizer()

    resumed = ResumableSchedule(cosine_schedule(1.0, 40, 10), phase_start=5, steps_per_epoch=10, total_steps=40)
    resumed.set_model(Model())
    resumed.on_epoch_begin(7)  # the phase's third epoch, after a resume
    resumed.on_train_batch_begin(3)
    assert Model.optimizer.learning_rate == pytest.approx(rates[23])


@pytest.mark.heavy
@pytest.mark.parametrize("keep", ["best", "final"])
def test_averaged_weights_are_what_is_validated_kept_and_evaluated(make_dataset, tmp_path, monkeypatch, keep):
    """With weight averaging, the model kept is an averaged one: the most accurate epoch's (`best`)
    or the last epoch's (`final`). Evaluated again on the validation images (no test split), it
    scores exactly what validation logged for that epoch."""
    data = str(make_dataset({"red": 12, "green": 12, "blue": 12}))
    values = dict(
        backbone=_use_tiny_backbone(monkeypatch),
        head_epochs=4,
        finetune_epochs=0,
        head_learning_rate=0.01,
        test_fraction=0.0,
        val_fraction=0.3,
    )
    averaged, state, _ = _run(tmp_path, tiny_config(data, average_weights=True, keep=keep, **values), name="averaged")
    assert state is RunState.SUCCEEDED, averaged.status()
    assert averaged.status().kept == keep
    plain, _, _ = _run(tmp_path, tiny_config(data, average_weights=False, **values), name="plain")
    rows = list(csv.DictReader(open(averaged.history_path)))
    best = max(range(len(rows)), key=lambda i: (float(rows[i]["val_accuracy"]), i))  # ties go to the later epoch
    chosen = best if keep == "best" else len(rows) - 1
    evaluation = averaged.evaluation()
    assert evaluation["split"] == "val"
    assert evaluation["accuracy"] == pytest.approx(float(rows[chosen]["val_accuracy"]))
    assert evaluation["loss"] == pytest.approx(float(rows[chosen]["val_loss"]), rel=1e-3)
    plain_losses = [float(r["val_loss"]) for r in csv.DictReader(open(plain.history_path))]
    assert [float(r["val_loss"]) for r in rows] != pytest.approx(plain_losses, rel=1e-3)  # the average is really used


@pytest.mark.heavy
def test_keep_auto_keeps_the_best_epoch_only_with_enough_validation_photos(make_dataset, tmp_path, monkeypatch):
    from core.training import keep, phases

    data = str(make_dataset({"red": 8, "green": 8}))
    config = tiny_config(data, backbone=_use_tiny_backbone(monkeypatch), head_epochs=2, finetune_epochs=0)
    few, state, lines = _run(tmp_path, config, name="few")
    assert state is RunState.SUCCEEDED and few.status().kept == "final"
    assert few.status().message.startswith("Finished: the final model was kept. ")
    assert any("too few to pick an epoch by" in line for line in lines)
    for module in (keep, phases):  # this dataset's 2 validation photos are enough
        monkeypatch.setattr(module, "BEST_NEEDS_VALIDATION", 2)
    enough, state, lines = _run(tmp_path, config, name="enough")
    assert state is RunState.SUCCEEDED and enough.status().kept == "best"
    assert any("most accurate epoch" in line for line in lines)


@pytest.mark.heavy
@pytest.mark.parametrize("photo_size, expected", [(240, 224), (40, 160)])
def test_auto_image_size_is_chosen_from_the_photos(make_dataset, tmp_path, monkeypatch, photo_size, expected):
    """The tiny stand-in has the MobileNets' sizes: 224 px for photos at least that large, else 160."""
    data = str(make_dataset({"red": 6, "green": 6}, size=photo_size))
    config = tiny_config(data, backbone=_use_tiny_backbone(monkeypatch), image_size=0, finetune_epochs=0)
    run, state, lines = _run(tmp_path, config)
    assert state is RunState.SUCCEEDED, run.status()
    assert run.config().image_size == 0 and run.image_size() == expected == run.status().image_size
    assert any(f"Image size {expected} px, chosen from the photos (typically {photo_size} px" in line for line in lines)
    model = keras.models.load_model(run.model_path, safe_mode=True)
    assert model.get_layer("resize").output.shape[1:3] == (expected, expected)


@pytest.mark.heavy
def test_a_first_model_is_kept_and_scored_as_phase_1_ends_and_gives_way_only_to_a_better_one(
    make_dataset, tmp_path, monkeypatch
):
    from core.training import keep, phases

    data = str(make_dataset({"red": 8, "green": 8}))
    config = tiny_config(data, backbone=_use_tiny_backbone(monkeypatch), head_epochs=2, finetune_epochs=2)
    seen = {}

    def watch(line: str) -> None:
        if line.startswith("A first model is ready") and "first" not in seen:
            # what the pages read while phase 2 runs
            seen["first"] = (run.raw_status(), run.evaluation(), run.model_path.stat().st_mtime_ns)

    run = RunDirectory.create(tmp_path / "runs", config, run_id="first-then-final")
    assert train_run(run, echo=watch) is RunState.SUCCEEDED
    status, evaluation, stamp = seen["first"]
    assert status.state is RunState.RUNNING and status.kept == "first" and status.epoch == 2
    assert evaluation["model"] == "first" and evaluation["split"] == "test"
    assert status.first_model["accuracy"] == evaluation["accuracy"]
    assert status.first_model["val_accuracy"] == run.history()[1]["val_accuracy"]  # phase 1's last epoch
    assert run.first_model_path.exists()
    final = run.status()
    assert final.kept in ("final", "first") and run.evaluation()["model"] == final.kept
    assert run.model_path.stat().st_mtime_ns > stamp  # the kept model was written again at the end

    # A fine-tuning that does worse on validation than the first model does not replace it, given enough
    # validation photos to tell them apart (this dataset's 2 are, here).
    monkeypatch.setattr(keep, "_first_does_better", lambda session, value: True)
    for module in (keep, phases):
        monkeypatch.setattr(module, "BEST_NEEDS_VALIDATION", 2)
    worse = RunDirectory.create(tmp_path / "runs", config.replace(keep="final"), run_id="first-kept")
    lines = []
    assert train_run(worse, echo=lines.append) is RunState.SUCCEEDED
    assert worse.status().kept == "first" and worse.evaluation()["model"] == "first"
    assert worse.status().message.startswith("Finished: the first model was kept.")
    assert any("fine-tuning did not do better" in line for line in lines)
    kept = keras.models.load_model(worse.model_path, safe_mode=True)
    first = keras.models.load_model(worse.first_model_path, safe_mode=True)
    assert all((a == b).all() for a, b in zip(kept.get_weights(), first.get_weights(), strict=True))


def test_the_first_model_wins_only_on_a_higher_validation_score(make_dataset, tmp_path):
    from types import SimpleNamespace

    from core.training.keep import _first_does_better

    run = RunDirectory.create(tmp_path, tiny_config("demo"), run_id="r")
    run.update_status(first_model={"val_accuracy": 0.8})
    session = SimpleNamespace(run=run)
    assert not _first_does_better(session, 0.9)  # no first model file yet
    run.first_model_path.parent.mkdir(parents=True)
    run.first_model_path.write_bytes(b"model")
    assert _first_does_better(session, 0.7)
    assert not _first_does_better(session, 0.8)  # a tie goes to the fine-tuned model
    assert not _first_does_better(session, None)  # no validation photos: nothing to compare by


def _judged_run(tmp_path, make_dataset, monkeypatch, name, **changes):
    """A run whose phase 2 may end once it stops paying, with this tiny set's validation photos counted as enough."""
    from core.training import keep, phases

    _use_tiny_backbone(monkeypatch)
    for module in (keep, phases):
        monkeypatch.setattr(module, "BEST_NEEDS_VALIDATION", 2)
    data = make_dataset({"red": 20, "green": 20, "blue": 20})
    config = tiny_config(str(data), backbone="tiny", finetune_until="pays", **changes)
    return _run(tmp_path, config, name)


@pytest.mark.heavy
def test_fine_tuning_stops_after_three_epochs_that_do_not_beat_the_head_alone(make_dataset, tmp_path, monkeypatch):
    run, state, lines = _judged_run(
        tmp_path, make_dataset, monkeypatch, "enough", head_epochs=10, head_learning_rate=0.03, finetune_epochs=10
    )
    assert state is RunState.SUCCEEDED, lines
    status = run.status()
    assert status.first_model["val_accuracy"] == 1.0  # nothing left for fine-tuning to win
    assert [row["phase"] for row in run.history()].count(2) == 3
    assert status.finetune_decision == (
        "Fine-tuning stopped after 3 of 10 epochs: it did not improve on the new head alone (100.0% of the "
        "validation photos at best, against 100.0%), so it ended there."
    )
    assert status.finetune_decision in lines and status.finetune_decision in status.kept_in_words()


@pytest.mark.heavy
def test_fine_tuning_runs_on_while_it_improves_the_validation_photos(make_dataset, tmp_path, monkeypatch):
    # The head barely learns (one epoch at a tiny rate), so fine-tuning has everything to win.
    run, state, lines = _judged_run(
        tmp_path,
        make_dataset,
        monkeypatch,
        "pays",
        head_epochs=1,
        head_learning_rate=1e-6,
        finetune_epochs=3,
        finetune_learning_rate=0.03,
    )
    assert state is RunState.SUCCEEDED, lines
    status = run.status()
    assert [row["phase"] for row in run.history()].count(2) == 3
    head = status.first_model["val_accuracy"]
    assert head < 0.7
    assert status.finetune_decision == (
        f"Fine-tuning ran all 3 epochs: it improved the validation photos (from {head:.1%} with the new head alone "
        "to 100.0% at best) and never went 3 epochs in a row without improving."
    )
    assert status.finetune_decision in lines


@pytest.mark.heavy
def test_every_fine_tuning_epoch_runs_with_too_few_validation_photos_and_says_so(make_dataset, tmp_path, monkeypatch):
    _use_tiny_backbone(monkeypatch)
    data = make_dataset({"red": 20, "green": 20, "blue": 20})
    config = tiny_config(
        str(data), backbone="tiny", head_epochs=10, head_learning_rate=0.03, finetune_epochs=5, finetune_until="pays"
    )
    run, state, lines = _run(tmp_path, config, "few")
    assert state is RunState.SUCCEEDED, lines
    assert [row["phase"] for row in run.history()].count(2) == 5
    assert (
        "validation photos are too few to tell when it stops paying (200 are needed)" in run.status().finetune_decision
    )


def test_the_fine_tuning_decision_in_one_plain_sentence():
    from core.training.phases import finetune_decision

    said = finetune_decision("pays", 650, 4, 15, 0.80, [0.78, 0.81, 0.80, 0.805], stopped_early=True)
    assert said == (
        "Fine-tuning stopped after 4 of 15 epochs: it no longer improved the validation photos (81.0% at best, "
        "against 80.0% for the new head alone)."
    )
    said = finetune_decision("pays", 650, 15, 15, 0.73, [0.70, 0.79], stopped_early=False)
    assert said == (
        "Fine-tuning ran all 15 epochs: it improved the validation photos (from 73.0% with the new head alone to "
        "79.0% at best) and never went 3 epochs in a row without improving."
    )
    assert finetune_decision("pays", 650, 3, 3, 0.9, [0.8, 0.85, 0.9], stopped_early=False).startswith(
        "Fine-tuning ran all 3 epochs without improving on the new head alone (90.0%"
    )
    assert finetune_decision("all", 650, 1, 1, None, [], stopped_early=False) == "Fine-tuning ran all 1 epoch, as set."
    few = finetune_decision("pays", 36, 15, 15, 0.9, [0.95], stopped_early=False)
    assert few.startswith("Fine-tuning ran all 15 epochs (from 90.0% with the new head alone to 95.0% at best): 36 ")
