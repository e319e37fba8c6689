"""The learning-rate finder: a real sweep on a tiny model, through the engine, the CLI and the Train page."""

import json

import keras
import numpy as np
import pytest

from core.training.lr_finder import suggest, sweep
from tests.test_cli import TINY, cli


def test_the_sweep_rises_exponentially_leaves_the_model_alone_and_suggests_below_the_minimum():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2, activation="softmax")])
    before = [w.copy() for w in model.get_weights()]
    result = sweep(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(16), "adam", steps=120)
    rates, losses = result["rates"], result["losses"]
    assert len(rates) >= 20 and all(b > a for a, b in zip(rates, rates[1:]))
    assert all(np.isfinite(losses))
    lowest = rates[int(np.argmin(losses))]
    assert result["suggestion"] == pytest.approx(lowest / 10, rel=0.5)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert suggest([1e-3] * 5, [1.0] * 5) is None  # too short to tell


@pytest.mark.heavy
def test_find_lr_on_the_cli_prints_the_curve_and_a_suggestion_and_trains_nothing(make_dataset, tmp_path):
    data = make_dataset({"red": 10, "green": 10})
    out = tmp_path / "sweep"
    result = cli("train", "--data", str(data), *TINY, "--find-lr", "--out", str(out))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Suggested phase-1 learning rate" in result.stdout and "learning rate 1.00e-06" in result.stdout
    sweep_result = json.loads((out / "lr_find.json").read_text())
    assert sweep_result["suggestion"] and len(sweep_result["rates"]) == len(sweep_result["losses"])
    assert not (out / "model.keras").exists() and not (out / "history.csv").exists()


@pytest.mark.heavy
def test_the_train_page_shows_the_sweep_and_uses_the_suggestion(monkeypatch):
    from tests.test_pages import page

    asked = []

    def fake_task(name, args, message):
        asked.append((name, args["config"]["data"]))
        rates = list(np.geomspace(1e-6, 1, 50))
        return {"rates": rates, "losses": [1.0] * 50, "suggestion": 0.003, "message": "Suggested 0.003"}, None

    monkeypatch.setattr("app_pages.train_views.task_result", fake_task)  # where the finder asks for it
    at = page("train").run()
    at.button(key="find_lr").click().run()
    assert not at.exception and asked == [("lr_find", "demo")]
    assert at.button(key="use_lr").label == "Use 0.003"
    at.button(key="use_lr").click().run()
    assert at.session_state["draft"].head_learning_rate == 0.003
    assert at.number_input(key="head_learning_rate").value == 0.003
