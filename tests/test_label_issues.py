"""Confident learning on out-of-sample answers: flipped labels found, outliers named, awkward sets handled."""

import numpy as np

from core.results.label_issues import out_of_sample_probabilities, rank_photos, views_of

CLASSES = ["cat", "dog", "fox"]


def _clusters(seed: int, per_class: int = 40, views: int = 2, spread: float = 1.0):
    """Three classes of features around three centres, each photo in `views` slightly different versions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (len(CLASSES), 16))
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    base = centres[labels] + rng.normal(0, spread, (len(labels), 16))
    features = np.stack([base + rng.normal(0, 0.3, base.shape) for _ in range(views)])
    return features, labels, rng


def _rows(labels: np.ndarray) -> list[tuple[str, str, str]]:
    return [("training", CLASSES[label], f"photo_{k:03d}.png") for k, label in enumerate(labels)]


def test_flipped_labels_come_first_with_the_class_the_photos_suggest():
    for seed in range(3):
        features, labels, rng = _clusters(seed)
        flipped = rng.choice(len(labels), 12, replace=False)
        given = labels.copy()
        given[flipped] = (labels[flipped] + 1) % len(CLASSES)
        ranked = rank_photos(_rows(given), CLASSES, features, seed)
        first = ranked[: len(flipped)]
        paths = {f"photo_{k:03d}.png" for k in flipped}
        assert sum(row.path in paths for row in first) >= 11, (seed, [row.path for row in first])
        for row in ranked:
            if row.path in paths and row.issue == "label":
                k = int(row.path[6:9])
                assert row.suggested == CLASSES[labels[k]] and row.given == CLASSES[given[k]]
                assert row.quality < row.confidence  # strongly regularised: sure of the class, not extreme
        assert [row.issue for row in ranked] == sorted(
            (row.issue for row in ranked), key=["label", "outlier", ""].index
        )


def test_a_photo_unlike_every_class_is_called_an_outlier():
    features, labels, _ = _clusters(4, views=1)
    features[0, 5] = 40.0  # far from every class's photos
    ranked = rank_photos(_rows(labels), CLASSES, features)
    odd = next(row for row in ranked if row.path == "photo_005.png")
    assert odd.issue in ("outlier", "label") and odd.outlier_score == min(row.outlier_score for row in ranked)
    assert sum(row.issue == "outlier" for row in ranked) <= 3  # only the far ones, not a share of every set


def test_answers_never_come_from_a_model_that_saw_the_photo():
    """A photo alone of its kind in the wrong class: a model trained on it would agree with its label; held out, the
    answer is the class its features belong to."""
    features, labels, _ = _clusters(5, views=1)
    given = labels.copy()
    given[0] = 2
    probabilities = out_of_sample_probabilities(features, given, len(CLASSES))
    assert probabilities[0].argmax() == labels[0] and probabilities[0, 2] < probabilities[0, labels[0]] - 0.1
    assert np.allclose(probabilities.sum(axis=1), 1.0)


def test_small_and_one_class_sets_get_answers_not_errors():
    features, labels, _ = _clusters(6, per_class=1, views=1)  # one photo per class: nothing can be held out
    ranked = rank_photos(_rows(labels), CLASSES, features)
    assert len(ranked) == 3 and all(row.quality == round(1 / 3, 4) for row in ranked)
    features, labels, _ = _clusters(7, per_class=6, views=1)
    labels[:] = 0  # a single class
    ranked = rank_photos(_rows(labels), CLASSES, features)
    assert len(ranked) == 18 and not any(row.issue == "label" for row in ranked)
    features, labels, _ = _clusters(8, per_class=5, views=1)
    labels[0] = 2  # one class with a single extra photo, another short of one: folds still form
    assert len(rank_photos(_rows(labels), CLASSES, features)) == 15


def test_the_versions_follow_the_run_s_augmentation():
    photos = np.random.default_rng(0).integers(0, 255, (3, 20, 20, 3), dtype=np.uint8)
    assert len(views_of(photos, flip=False, zoom=False)) == 1
    flipped = views_of(photos, flip=True, zoom=False)
    assert len(flipped) == 2 and np.array_equal(flipped[1][:, :, 0], photos[:, :, -1])
    both = views_of(photos, flip=True, zoom=True)
    assert len(both) == 4 and all(view.shape == photos.shape for view in both)


def test_the_review_says_how_many_it_found_even_when_it_shows_fewer():
    from core.results.review import review_summary

    shown = [{"issue": "label"}] * 24
    result = {"photos": shown, "reviewed": 4317, "judged_by": "the pretrained network", "flagged": {"label": 951}}
    assert review_summary(result) == (
        "4317 photos judged by the pretrained network: 951 probably in the wrong class; the 24 most suspicious are below."
    )
    quiet = {"photos": [], "reviewed": 40, "judged_by": "the trained model", "flagged": {"label": 0, "outlier": 0}}
    assert review_summary(quiet) == "40 photos judged by the trained model: none looks mislabelled or out of place."
