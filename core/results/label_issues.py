"""Which photos are probably in the wrong class, or unlike the rest: confident learning on out-of-sample answers.

A model trained on a photo has partly learned that photo's label, wrong or not, so its own answers
are weakest exactly where a label is wrong. Confident learning (Northcutt et al., JAIR 2021, through
`cleanlab`) needs answers made *without* each photo instead: here a logistic regression on the
pretrained network's features, trained in K folds, each photo answered by the fold that never saw
it. The features are the pretrained network's, the one fast mode freezes, averaged over the altered
versions the run's augmentation allows (the original, its mirror image, a closer crop), so one
unlucky crop does not decide. Measured on flowers5 and hymenoptera with labels flipped on purpose:
`bench/label_issues.py`, `docs/review.md`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FOLDS = 5
# The logistic regression's C: strongly regularised, it cannot bend around a few wrong labels. Share of the flipped
# photos (10%) in the first N rows on flowers5 (4,317 photos, 160 px, 4 versions): C=1: 0.48, 0.1: 0.52, 0.01: 0.59,
# 0.001: 0.65, 0.0001: 0.67; the one-view plain ranking: 0.45. On hymenoptera (3 seeds): 0.1: 0.60, 0.001: 0.65,
# plain: 0.54 (docs/review.md).
REGULARISATION = 0.001
MIN_PHOTOS_PER_CLASS = 2  # a class with fewer photos cannot be held out in folds
ZOOM_CROP = 0.85  # the closer crop's share of each side, when the run's augmentation zooms


@dataclass(frozen=True)
class LabelRow:
    """One photo's row of the review: its class as given, the class the data suggests and the label's quality.

    Attributes:
        quality: cleanlab's label quality score in [0, 1]: the out-of-sample probability of the given class
            (low: the given class is probably wrong).
        confidence: the out-of-sample probability of the suggested class.
        issue: "label" (probably in the wrong class), "outlier" (unlike every class's photos), "near-copy", or "".
    """

    path: str
    split: str
    given: str
    suggested: str
    quality: float
    confidence: float
    issue: str = ""
    outlier_score: float = 1.0


def views_of(photos: np.ndarray, flip: bool, zoom: bool) -> list[np.ndarray]:
    """The versions of `photos` (N, H, W, 3 uint8) that the run's augmentation allows: the originals, then their
    mirror images (`flip`), then a centred closer crop of each (`zoom`), all at the same size."""
    views = [photos]
    if flip:
        views.append(photos[:, :, ::-1])
    if zoom and photos.shape[1] >= 8:
        from PIL import Image

        side = photos.shape[1]
        crop = int(round(side * ZOOM_CROP))
        start = (side - crop) // 2
        cropped = [
            np.asarray(Image.fromarray(p[start : start + crop, start : start + crop]).resize((side, side)))
            for p in photos
        ]
        views.append(np.stack(cropped))
        if flip:
            views.append(views[-1][:, :, ::-1])
    return views


def out_of_sample_probabilities(features: np.ndarray, labels: np.ndarray, classes: int, seed: int = 0) -> np.ndarray:
    """Each photo's class probabilities from a logistic regression that never saw it.

    Args:
        features: (views, photos, dimensions): each photo's features in each version; the classifier learns from
            every version of the other folds' photos and averages its answers over this photo's versions.
        labels: each photo's given class (0 to `classes` - 1).

    The folds are stratified; a class with a single photo gets the prior instead (it cannot be held out).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    views, count = features.shape[:2]
    probabilities = np.full((count, classes), 1.0 / classes)
    counts = np.bincount(labels, minlength=classes)
    usable = np.flatnonzero(counts[labels] >= MIN_PHOTOS_PER_CLASS)
    folds = min(FOLDS, int(counts[counts >= MIN_PHOTOS_PER_CLASS].min(initial=FOLDS)))
    if folds < 2 or len(np.unique(labels[usable])) < 2:
        return probabilities
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train, held in splitter.split(np.zeros(len(usable)), labels[usable]):
        train, held = usable[train], usable[held]
        model = make_pipeline(StandardScaler(), LogisticRegression(C=REGULARISATION, max_iter=1000))
        model.fit(features[:, train].reshape(-1, features.shape[-1]), np.tile(labels[train], views))
        answers = np.mean([model.predict_proba(features[v, held]) for v in range(views)], axis=0)
        probabilities[np.ix_(held, model.classes_)] = answers
        missing = np.setdiff1d(np.arange(classes), model.classes_)
        probabilities[np.ix_(held, missing)] = 0.0
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def find_label_issues(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which photos are probably in the wrong class (a boolean per photo), and every label's quality score."""
    from cleanlab.filter import find_label_issues as cleanlab_issues
    from cleanlab.rank import get_label_quality_scores

    quality = get_label_quality_scores(labels, probabilities, method="self_confidence")
    present = np.bincount(labels, minlength=probabilities.shape[1]) > 0
    if present.sum() < 2 or len(labels) < 2 * probabilities.shape[1]:
        return quality < 0.05, quality  # too few photos for cleanlab's estimate of the noise: only the clearest
    issues = cleanlab_issues(labels, probabilities, filter_by="prune_by_noise_rate", n_jobs=1)
    return np.asarray(issues, bool), quality


def outlier_scores(features: np.ndarray) -> np.ndarray:
    """How typical each photo's features are among all the photos (cleanlab's out-of-distribution score in
    [0, 1], low: unlike the rest); ones when there are too few photos to say."""
    from cleanlab.outlier import OutOfDistribution

    if len(features) < 12:
        return np.ones(len(features))
    neighbours = min(10, len(features) - 1)
    detector = OutOfDistribution(params={"k": neighbours})
    return np.asarray(detector.fit_score(features=features, verbose=False), float)


# A photo is called unlike the rest when its score is this many robust deviations (1.4826 × the median absolute
# deviation) below the median score. Measured (docs/review.md): a fixed limit of 0.3 flagged a quarter of flowers5;
# this flags none of flowers5's 4,317 photos and 1 of hymenoptera's 245.
OUTLIER_DEVIATIONS = 3.0


def unlike_the_rest(scores: np.ndarray) -> np.ndarray:
    """Which photos' outlier scores lie far below the others' (a boolean per photo)."""
    if len(scores) < 12:
        return np.zeros(len(scores), bool)
    median = float(np.median(scores))
    spread = 1.4826 * float(np.median(np.abs(scores - median)))
    return scores < median - OUTLIER_DEVIATIONS * max(spread, 1e-6)


def rank_photos(
    rows: list[tuple[str, str, str]], class_names: list[str], features: np.ndarray, seed: int = 0
) -> list[LabelRow]:
    """Every photo's review row, most suspicious first: probable wrong labels (lowest quality first), then the
    photos unlike the rest, then everything else by label quality.

    Args:
        rows: (split, given class, path) per photo.
        features: (views, photos, dimensions), as `out_of_sample_probabilities` takes them.
    """
    labels = np.array([class_names.index(label) for _, label, _ in rows])
    probabilities = out_of_sample_probabilities(features, labels, len(class_names), seed)
    wrong, quality = find_label_issues(labels, probabilities)
    typical = outlier_scores(features.mean(axis=0))
    odd = unlike_the_rest(typical)
    ranked = []
    for k, (split, label, path) in enumerate(rows):
        best = int(probabilities[k].argmax())
        issue = "label" if wrong[k] and best != labels[k] else "outlier" if odd[k] else ""
        ranked.append(
            LabelRow(
                path,
                split,
                label,
                class_names[best],
                round(float(quality[k]), 4),
                round(float(probabilities[k, best]), 4),
                issue,
                round(float(typical[k]), 4),
            )
        )
    order = {"label": 0, "outlier": 1, "": 2}
    ranked.sort(key=lambda row: (order[row.issue], row.outlier_score if row.issue == "outlier" else row.quality))
    return ranked
