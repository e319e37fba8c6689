"""Test-set metrics from predicted probabilities, with scikit-learn doing the arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support


def evaluate_predictions(
    y_true: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    paths: Sequence[str],
    split: str = "test",
) -> dict:
    """Accuracy, loss, confusion matrix, per-class scores and the mistakes, most confident first.

    Args:
        y_true: the true class index of each image.
        probabilities: (N, classes) predicted probabilities, rows in the same order.
        paths: the image file of each row, for the mistakes gallery.
        split: which split these images are ("test", or "val" when there is no test split).
    """
    truth = np.asarray(y_true, dtype=int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = list(range(len(class_names)))
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(truth, y_pred, labels=labels, zero_division=0)
    clipped = np.clip(probabilities, 1e-7, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    mistakes: list[dict[str, Any]] = [
        {
            "path": str(paths[int(i)]),
            "true": class_names[int(truth[i])],
            "predicted": class_names[int(y_pred[i])],
            "confidence": float(probabilities[i, y_pred[i]]),
            "true_class_probability": float(probabilities[i, truth[i]]),
        }
        for i in np.flatnonzero(y_pred != truth)
    ]
    mistakes.sort(key=lambda m: m["confidence"], reverse=True)
    return {
        "split": split,
        "count": int(len(truth)),
        "accuracy": float(accuracy_score(truth, y_pred)),
        "loss": float(log_loss(truth, clipped, labels=labels)),
        "class_names": list(class_names),
        "confusion_matrix": confusion_matrix(truth, y_pred, labels=labels).tolist(),
        # each row as shares of that true class (a class with no photos: zeros)
        "confusion_shares": np.nan_to_num(confusion_matrix(truth, y_pred, labels=labels, normalize="true")).tolist(),
        "per_class": [
            {
                "class": name,
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(support[k]),
            }
            for k, name in enumerate(class_names)
        ],
        "misclassified": mistakes,
    }


def photos_of(count: int, split: str) -> str:
    """ "1 test photo", "36 validation photos": the count with the right noun for the split."""
    kind = {"test": "test", "val": "validation", "train": "training"}.get(split, split)
    return f"{count} {kind} photo" + ("" if count == 1 else "s")


def accuracy_headline(evaluation: dict) -> str:
    """What a run's accuracy was measured on, true to its photos: test photos, or validation photos when none
    were kept aside for a test (they then also chose the epoch, so they flatter it a little)."""
    count, split = evaluation["count"], evaluation.get("split", "test")
    if split == "test":
        return f"Accuracy on {photos_of(count, split)} it never trained on"
    return f"Accuracy on {photos_of(count, split)} (no photos were kept aside for a test)"


def accuracy_label(split: str | None) -> str:
    """The short name of a run's accuracy, for a sidebar or a table."""
    return "Validation accuracy" if split == "val" else "Test accuracy"


def mistake_caption(mistake: dict) -> str:
    """ "ants, taken for bees (82% sure)": no article, which class folders named in the plural would get wrong."""
    return f"{mistake['true']}, taken for {mistake['predicted']} ({mistake['confidence']:.0%} sure)"


def results_in_words(evaluation: dict) -> list[dict]:
    """Each class's results as a person says them: how many of its photos it found, and how often it was
    right when it named the class."""
    rows = []
    for row in evaluation["per_class"]:
        name, found, right = row["class"], row["recall"], row["precision"]
        named = sum(line[evaluation["class_names"].index(name)] for line in evaluation["confusion_matrix"])
        rows.append(
            {
                "class": name,
                "photos": row["support"],
                "found": f"found {found:.0%} of the {name} photos ({round(found * row['support'])} of {row['support']})",
                "right": (
                    f"right {right:.0%} of the times it said {name} ({round(right * named)} of {named})"
                    if named
                    else f"never said {name}"
                ),
            }
        )
    return rows
