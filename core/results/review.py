"""Which photos to look at again: the training and validation photos probably in the wrong class or unlike the
rest (confident learning on out-of-sample answers, `core.results.label_issues`), and the near-copies: photos
whose features point the same way, which byte comparison misses once a photo is re-encoded or resized."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import numpy as np

from core.results.label_issues import LabelRow, rank_photos, views_of

MAX_REVIEWED = 4000  # training and validation photos scored, spread over the splits
SHOWN = 24


SAME = 0.985  # cosine similarity of two photos' features above which they are called near-copies
PAIRS = 12
SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}


def review(run, limit: int = SHOWN) -> dict:
    """The photos worth a second look (`photos`: probable wrong labels, then photos unlike the rest), the near-copies
    (`pairs`), and which network's features judged them (`judged_by`)."""
    rows, pairs, judged_by = label_review(run)
    photos = [asdict(row) for row in rows if row.issue in ("label", "outlier")][:limit]
    return {"photos": photos, "pairs": pairs, "judged_by": judged_by, "reviewed": len(rows)}


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


def label_review(run) -> tuple[list[LabelRow], list[dict], str]:
    """Every training and validation photo's review row, most suspicious first; the near-copies among them; and
    which network's features judged them, in words.

    Raises:
        InputError: the run has no model, or none of its photos can be read on this machine.
    """
    from core.base.errors import InputError
    from core.data.images import ImageRejected, load_rgb

    evaluation = run.evaluation() or {}
    names = evaluation.get("class_names") or run.raw_status().class_names
    if not names or not run.model_path.exists():
        raise InputError(f"{run.id} has no model yet: it has to finish first.")
    rows = [(s, label, path) for s, label, path in run.splits() if s in ("train", "val") and label in names]
    rows = rows[:: max(len(rows) // MAX_REVIEWED, 1)][:MAX_REVIEWED]
    photos, kept = [], []
    size = run.image_size()
    for row in rows:
        try:
            photos.append(load_rgb(row[2], size))
            kept.append(row)
        except (OSError, ImageRejected):
            continue
    if len(kept) < 2:
        raise InputError("The run's training photos are not on this machine, so they cannot be reviewed.")
    features, judged_by = review_features(run, np.stack(photos))
    ranked = rank_photos([(SPLIT_WORDS[s], label, path) for s, label, path in kept], names, features, run.config().seed)
    pairs = near_copies(features[0], kept)
    paired = {path for pair in pairs for path in pair["paths"]}
    ranked = [replace(row, issue="near-copy") if not row.issue and row.path in paired else row for row in ranked]
    return ranked, pairs, judged_by


def review_features(run, photos: np.ndarray) -> tuple[np.ndarray, str]:
    """The features the review judges by: (versions, photos, dimensions) from the pretrained network the run
    started from (which never saw these labels), in the versions the run's augmentation allows; the kept model's
    own when the run started from random weights or its weights file is not here. And which, in words."""
    from core.network.backbones import get_backbone
    from core.network.choices import AugmentationConfig
    from core.network.inference import load_model, quiet_tensorflow
    from core.network.model import build_classifier
    from core.network.weights import WeightsUnavailable, build_base, resolve_weights
    from core.training.calibration import features_of

    quiet_tensorflow()
    config = run.config()
    spec = get_backbone(config.backbone)
    size = run.image_size()
    augmentation = config.augmentation
    views = views_of(photos, flip=augmentation.flip in ("horizontal", "both"), zoom=augmentation.zoom > 0)
    try:
        choice = resolve_weights(spec, size, config.weights, download=False)
        if choice.path is None:
            raise WeightsUnavailable("random weights")
        names = (run.evaluation() or {}).get("class_names") or run.raw_status().class_names
        model = build_classifier(build_base(spec, size, choice), spec, len(names), size, AugmentationConfig.off())
        judged_by = f"the pretrained {spec.label} the run started from, before it learned these labels"
    except WeightsUnavailable:
        model = load_model(run.model_path)
        judged_by = "the trained model (the run's pretrained weights are not on this machine)"
    features = np.stack([features_of(model, view)[0] for view in views])
    return features, judged_by


def review_words(photo: dict) -> str:
    """One reviewed photo in words (Markdown, names escaped): its split, its class and what is odd about it."""
    from core.base.markup import md_literal

    given = f"{photo['split']} · labelled **{md_literal(photo['given'])}**"
    if photo["issue"] == "outlier":
        return f"{given} · unlike the photos of every class"
    return f"{given} · the other photos suggest **{md_literal(photo['suggested'])}** ({photo['confidence']:.0%} sure)"
