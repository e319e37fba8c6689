"""What to collect next: learning curves that climb for a hard class and stay flat for an easy one, the pair mixed
up most, and both in words."""

import numpy as np

from core.results.collect_next import collect_words, confused_pairs, learning_curves

NAMES = ["easy", "hard", "other"]


def _features(seed: int = 0):
    """An easy class far from the rest, and two classes that overlap: the hard one needs many photos to be told apart."""
    rng = np.random.default_rng(seed)
    easy = rng.normal(0, 1, (60, 20)) + 12.0
    hard = rng.normal(0, 1.6, (60, 20)) + 0.7
    other = rng.normal(0, 1.6, (60, 20))
    return np.concatenate([easy, hard, other]), np.repeat([0, 1, 2], 60)


def test_a_hard_class_climbs_and_an_easy_one_has_levelled_off():
    features, labels = _features()
    curves = learning_curves(features, labels, NAMES)
    assert curves["fractions"] == [0.25, 0.5, 0.75, 1.0] and curves["draws"] >= 1
    easy, hard = curves["curves"]["easy"], curves["curves"]["hard"]
    assert min(easy) >= 0.98  # found every time, whatever its share
    assert hard[-1] > hard[0] + 0.05 and hard[-1] < 0.95  # more photos help, and it is not done
    words = collect_words(curves, [], "30 test photos")
    assert any(
        line.startswith("“easy”") and "levelled off: more photos of it would change little" in line for line in words
    )


def test_the_pair_mixed_up_most_comes_with_an_example():
    evaluation = {
        "class_names": NAMES,
        "confusion_matrix": [[10, 0, 1], [0, 7, 4], [0, 3, 8]],
        "misclassified": [
            {"path": "/photos/easy/e1.jpg", "true": "easy", "predicted": "other"},
            {"path": "/photos/other/o7.jpg", "true": "other", "predicted": "hard"},
        ],
    }
    pairs = confused_pairs(evaluation)
    assert [(p["classes"], p["mistakes"]) for p in pairs] == [(["hard", "other"], 7), (["easy", "other"], 1)]
    assert pairs[0]["example"]["path"] == "/photos/other/o7.jpg"
    words = collect_words({"curves": {}}, pairs, "33 test photos")
    assert words == [
        "“hard” and “other” are mixed up most: 7 of the 33 test photos (for example o7.jpg: other, taken for hard). "
        "Photos that show what tells them apart would help most."
    ]


def test_too_few_photos_give_no_curve_rather_than_an_error():
    features, labels = _features()
    keep = np.r_[0:60, 60:65, 120:180]  # "hard" keeps 5 photos: too few for its own curve
    curves = learning_curves(features[keep], labels[keep], NAMES)
    assert set(curves["curves"]) == {"easy", "other"}
    single = learning_curves(features[:60], labels[:60], NAMES)
    assert single["curves"] == {} and collect_words(single, [], "no photos") == []
    assert confused_pairs({"class_names": NAMES, "confusion_matrix": np.eye(3).tolist()}) == []
