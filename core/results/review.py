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
    photos = [asdict(row) for row in rows if row.issue in ("label", "outlier")]
    counts = {
        "label": sum(p["issue"] == "label" for p in photos),
        "outlier": sum(p["issue"] == "outlier" for p in photos),
    }
    return {"photos": photos[:limit], "pairs": pairs, "judged_by": judged_by, "reviewed": len(rows), "flagged": counts}


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
    names, kept, features, judged_by = reviewed_photos(run)
    learned = [k for k, (split, _, _) in enumerate(kept) if split != "test"]  # the test photos judge, not learn
    rows = [(SPLIT_WORDS[kept[k][0]], kept[k][1], kept[k][2]) for k in learned]
    ranked = rank_photos(rows, names, features[:, learned], run.config().seed)
    pairs = near_copies(features[0], kept)  # across every split: a copy in the test photos flatters the score
    paired = {path for pair in pairs for path in pair["paths"]}
    ranked = [replace(row, issue="near-copy") if not row.issue and row.path in paired else row for row in ranked]
    return ranked, pairs, judged_by


def reviewed_photos(run) -> tuple[list[str], list[tuple[str, str, str]], np.ndarray, str]:
    """The run's class names; its photos that can be read (every split), as (split, label, path); their features
    (`cached_review_features`) and which network gave them.

    Raises:
        InputError: the run has no model, or its photos are not on this machine.
    """
    from core.base.errors import InputError

    evaluation = run.evaluation() or {}
    names = evaluation.get("class_names") or run.raw_status().class_names
    if not names or not run.model_path.exists():
        raise InputError(f"{run.id} has no model yet: it has to finish first.")
    try:
        rows = [(s, label, path) for s, label, path in run.splits() if s in SPLIT_WORDS and label in names]
    except OSError:
        rows = []
    rows = rows[:: max(len(rows) // MAX_REVIEWED, 1)][:MAX_REVIEWED]
    paths, features, judged_by = cached_review_features(run, [path for _, _, path in rows])
    if len(paths) < 2:
        raise InputError("The run's training photos are not on this machine, so they cannot be reviewed.")
    by_path = {path: (split, label, path) for split, label, path in rows}
    return names, [by_path[path] for path in paths], features, judged_by


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
        judged_by = "the trained model " + (
            "(the run started from random weights)"
            if config.weights == "none"
            else "(the run's pretrained weights are not on this machine)"
        )
    features = np.stack([features_of(model, view)[0] for view in views])
    return features, judged_by


def cached_review_features(run, paths: list[str]) -> tuple[list[str], np.ndarray, str]:
    """The photos of `paths` that could be read, their `review_features` and which network gave them, kept in the
    run directory (`review/features.npz`) for as long as the photos are the same: labels do not change them, so a
    review after the person's decisions is instant."""
    import hashlib
    import io
    import json

    from core.base.files import write_atomic
    from core.data.images import ImageRejected, load_rgb

    model = run.model_path.stat().st_mtime_ns if run.model_path.exists() else 0  # the trained model's, when it judges
    key = hashlib.sha256(json.dumps([paths, run.config().weights, model]).encode()).hexdigest()
    stored_at = run.path / "review" / "features.npz"
    try:
        with np.load(stored_at, allow_pickle=False) as stored:
            if str(stored["key"]) == key:
                return [str(p) for p in stored["paths"]], np.asarray(stored["features"]), str(stored["judged_by"])
    except (OSError, ValueError, KeyError):
        pass
    photos, kept = [], []
    for path in paths:
        try:
            photos.append(load_rgb(path, run.image_size()))
            kept.append(path)
        except (OSError, ImageRejected):
            continue
    if len(kept) < 2:
        return kept, np.zeros((1, len(kept), 1), np.float32), ""
    features, judged_by = review_features(run, np.stack(photos))
    buffer = io.BytesIO()
    np.savez(buffer, key=key, paths=np.array(kept), features=features.astype(np.float32), judged_by=judged_by)
    stored_at.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(stored_at, buffer.getvalue())
    return kept, features, judged_by


def what_to_collect(run) -> dict:
    """Each class's learning curve, the pair the model mixes up most, and both in words (`core.results.collect_next`);
    kept in the run directory (`review/collect.json`) for the report."""
    import json

    from core.base.files import write_atomic
    from core.results.collect_next import collect_words, confused_pairs, learning_curves
    from core.training.evaluation import photos_of

    names, kept, features, _ = reviewed_photos(run)
    learned = [k for k, (split, _, _) in enumerate(kept) if split != "test"]
    labels = np.array([names.index(kept[k][1]) for k in learned])
    curves = learning_curves(features[:, learned].mean(axis=0), labels, names, run.config().seed)
    evaluation = run.evaluation() or {}
    pairs = confused_pairs(evaluation)
    tested = photos_of(int(evaluation.get("count", 0)), evaluation.get("split", "test"))
    result = {"curves": curves, "pairs": pairs, "words": collect_words(curves, pairs, tested)}
    write_atomic(run.path / "review" / "collect.json", json.dumps(result, indent=1))
    return result


def review_words(photo: dict) -> str:
    """One reviewed photo in words (Markdown, names escaped): its split, its class and what is odd about it."""
    from core.base.markup import md_literal

    given = f"{photo['split']} · labelled **{md_literal(photo['given'])}**"
    if photo["issue"] == "outlier":
        return f"{given} · unlike the photos of every class"
    return f"{given} · the other photos suggest **{md_literal(photo['suggested'])}** ({photo['confidence']:.0%} sure)"


def review_summary(result: dict) -> str:
    """What the review found, in one sentence: how many photos, judged by which network, how many flagged."""
    counts = result.get("flagged") or {}
    wrong, odd, shown = counts.get("label", 0), counts.get("outlier", 0), len(result["photos"])
    head = f"{result.get('reviewed', 0)} photos judged by {result.get('judged_by', 'the model')}: "
    if not wrong and not odd:
        return head + "none looks mislabelled or out of place."
    found = f"{wrong} probably in the wrong class" + (f" and {odd} unlike the rest" if odd else "")
    return head + found + (f"; the {shown} most suspicious are below." if shown < wrong + odd else ", below.")
