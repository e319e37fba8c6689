"""Which photos to look at again: the test mistakes, and the training and validation photos the kept
model finds hardest (highest loss: the least probability for the class they are labelled with).
A photo there is often mislabelled, a poor example, or a copy of another class's photo. And the
near-copies: photos whose features (the model's `pool` layer, the input of its head) point the
same way, which byte comparison misses once a photo is re-encoded or resized."""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_REVIEWED = 2000  # training and validation photos scored, spread over the splits
SHOWN = 24


SAME = 0.985  # cosine similarity of two photos' features above which they are called near-copies
PAIRS = 12
SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}


def review(run, limit: int = SHOWN) -> dict:
    """The photos worth a second look (`photos`) and the near-copies (`pairs`), from one pass of the kept model."""
    photos, pairs = review_candidates(run, limit)
    return {"photos": photos, "pairs": pairs}


def near_copies(features: np.ndarray, rows: list[tuple[str, str, str]], limit: int = PAIRS) -> list[dict]:
    """Pairs of photos whose features point the same way (cosine similarity at least SAME), most alike first:
    the same shot saved twice, re-encoded or resized, within a class or across classes and splits."""
    if len(features) < 2:
        return []
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    first, second = np.triu_indices(len(unit), k=1)
    alike = similarity[first, second]
    order = np.argsort(-alike)
    pairs: list[dict[str, Any]] = []
    for k in order[: limit * 4]:
        if alike[k] < SAME or len(pairs) >= limit:
            break
        (split_a, label_a, path_a), (split_b, label_b, path_b) = rows[first[k]], rows[second[k]]
        pairs.append(
            {
                "paths": [path_a, path_b],
                "splits": [SPLIT_WORDS[split_a], SPLIT_WORDS[split_b]],
                "labels": [label_a, label_b],
                "similarity": round(float(alike[k]), 4),
            }
        )
    return pairs


def review_candidates(run, limit: int = SHOWN) -> tuple[list[dict], list[dict]]:
    """Up to `limit` photos, most suspicious first (each with its split, label, the model's answer and loss),
    and the near-copies among all the run's photos."""
    from core.data.images import ImageRejected, load_rgb
    from core.network.inference import load_model, quiet_tensorflow
    from core.training.calibration import features_of

    evaluation = run.evaluation() or {}
    names = evaluation.get("class_names") or run.raw_status().class_names
    rows = run.splits()
    rows = [(split, label, path) for split, label, path in rows if split in SPLIT_WORDS and label in names]
    rows = rows[:: max(len(rows) // MAX_REVIEWED, 1)][:MAX_REVIEWED]
    photos, kept = [], []
    size = run.image_size()
    for row in rows:
        try:
            photos.append(load_rgb(row[2], size))
            kept.append(row)
        except (OSError, ImageRejected):
            continue
    candidates = [
        {
            "path": m["path"],
            "split": "test",
            "label": m["true"],
            "predicted": m["predicted"],
            "confidence": m["confidence"],
            "loss": float(-np.log(max(m.get("true_class_probability", 0.0), 1e-7))),
        }
        for m in evaluation.get("misclassified", [])
    ]
    pairs = []
    if photos:
        quiet_tensorflow()
        features, probabilities = features_of(load_model(run.model_path), np.stack(photos))
        pairs = near_copies(features, kept)
        for (split, label, path), p in zip(kept, probabilities, strict=True):
            if split == "test":
                continue  # its mistakes are listed from the evaluation
            best = int(p.argmax())
            candidates.append(
                {
                    "path": path,
                    "split": SPLIT_WORDS[split],
                    "label": label,
                    "predicted": names[best],
                    "confidence": float(p[best]),
                    "loss": float(-np.log(max(float(p[names.index(label)]), 1e-7))),
                }
            )
    candidates.sort(key=lambda c: -c["loss"])
    return candidates[:limit], pairs
