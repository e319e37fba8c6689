"""Evaluation on known predictions."""

import math

import numpy as np
import pytest

from core.training.evaluation import evaluate_predictions


def test_known_predictions_give_known_metrics():
    y_true = [0, 0, 1, 1, 2, 2]
    probabilities = np.array(
        [
            [0.9, 0.05, 0.05],  # right
            [0.2, 0.7, 0.1],  # 0 taken for 1 at 0.7
            [0.1, 0.8, 0.1],  # right
            [0.05, 0.9, 0.05],  # right
            [0.6, 0.1, 0.3],  # 2 taken for 0 at 0.6
            [0.1, 0.1, 0.8],  # right
        ]
    )
    result = evaluate_predictions(y_true, probabilities, ["a", "b", "c"], [f"img{k}.png" for k in range(6)])
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    per_class = {row["class"]: row for row in result["per_class"]}
    assert per_class["a"]["precision"] == pytest.approx(0.5) and per_class["a"]["recall"] == pytest.approx(0.5)
    assert per_class["b"]["precision"] == pytest.approx(2 / 3) and per_class["b"]["recall"] == 1.0
    assert per_class["c"]["support"] == 2 and per_class["c"]["f1"] == pytest.approx(2 / 3)
    expected_loss = -np.mean(np.log([0.9, 0.2, 0.8, 0.9, 0.3, 0.8]))
    assert math.isclose(result["loss"], expected_loss, rel_tol=1e-4)
    mistakes = result["misclassified"]
    assert [(m["path"], m["true"], m["predicted"]) for m in mistakes] == [
        ("img1.png", "a", "b"),
        ("img4.png", "c", "a"),
    ]
    assert mistakes[0]["confidence"] == pytest.approx(0.7)


def test_a_class_never_predicted_scores_zero_not_an_error():
    result = evaluate_predictions([0, 1], np.array([[0.9, 0.1], [0.8, 0.2]]), ["x", "y"], ["p", "q"])
    assert result["per_class"][1]["precision"] == 0.0 and result["per_class"][1]["recall"] == 0.0
