"""What to collect next: each class's learning curve, and the classes the model mixes up most.

A class's learning curve is how often a classifier finds its photos when it learns from 25, 50, 75
and all of them (the other classes keep all theirs), measured on photos it did not learn from
(3 folds, several random draws). It is a logistic regression on the pretrained network's features
(the photo review's, `core.results.review`), which takes milliseconds: the trend, not the run's
own accuracy. A class still climbing at 100% would gain from more photos; a flat one has levelled off.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FRACTIONS = (0.25, 0.5, 0.75, 1.0)
FOLDS = 3
MAX_FITS = 480  # classifiers trained in all: the draws shrink for many classes (about 10 s on 2 cores at most)
DIMENSIONS = 64  # features reduced by PCA first: the curves' trend survives, the fits are quick
STILL_CLIMBING = 0.03  # recall gained from 75% to 100% of a class's photos above which more photos would help
LEVELLED = 0.01  # at most this gained from 50% to 100%: the class has levelled off


def learning_curves(features: np.ndarray, labels: np.ndarray, class_names: list[str], seed: int = 0) -> dict:
    """Each class's recall at each fraction of its photos (`curves`: class -> [recall per FRACTIONS]), averaged over
    folds and draws (`draws`). Classes with fewer than 8 photos have no curve (too few to hold some out)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(labels, minlength=len(class_names))
    curved = [c for c in range(len(class_names)) if counts[c] >= 8]
    if len(curved) < 2 or len(np.unique(labels)) < 2:
        return {"fractions": list(FRACTIONS), "curves": {}, "draws": 0}
    dimensions = min(DIMENSIONS, features.shape[1], len(labels) - 1)
    reduced = StandardScaler().fit_transform(PCA(dimensions, random_state=seed).fit_transform(features))
    draws = max(1, min(3, MAX_FITS // (FOLDS * len(FRACTIONS) * len(curved))))
    found = {c: np.zeros(len(FRACTIONS)) for c in curved}
    held_total = {c: 0 for c in curved}
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero(counts[labels] >= FOLDS)
    for draw in range(draws):
        splitter = StratifiedKFold(FOLDS, shuffle=True, random_state=seed + draw)
        for train, held in splitter.split(np.zeros(len(usable)), labels[usable]):
            train, held = usable[train], usable[held]
            for c in curved:
                mine, others = train[labels[train] == c], train[labels[train] != c]
                targets = held[labels[held] == c]
                held_total[c] += len(targets)
                for k, fraction in enumerate(FRACTIONS):
                    chosen = rng.choice(mine, max(1, round(fraction * len(mine))), replace=False)
                    rows = np.concatenate([others, chosen])
                    model = LogisticRegression(max_iter=500).fit(reduced[rows], labels[rows])
                    found[c][k] += float((model.predict(reduced[targets]) == c).sum())
    curves = {class_names[c]: [round(v / max(held_total[c], 1), 4) for v in found[c]] for c in curved}
    return {"fractions": list(FRACTIONS), "curves": curves, "draws": draws}


def confused_pairs(evaluation: dict, limit: int = 3) -> list[dict[str, Any]]:
    """The pairs of classes the model mixes up most on its test photos, with how many and an example mistake."""
    names = evaluation.get("class_names") or []
    matrix = np.asarray(evaluation.get("confusion_matrix") or [[0]])
    pairs: list[dict[str, Any]] = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            mixed = int(matrix[i][j] + matrix[j][i])
            if mixed:
                example = next(
                    (
                        m
                        for m in evaluation.get("misclassified", [])
                        if {m["true"], m["predicted"]} == {names[i], names[j]}
                    ),
                    None,
                )
                pairs.append({"classes": [names[i], names[j]], "mistakes": mixed, "example": example})
    pairs.sort(key=lambda pair: -pair["mistakes"])
    return pairs[:limit]


def collect_words(curves: dict, pairs: list[dict], tested: str) -> list[str]:
    """What to collect next, in sentences: the classes that would gain most from more photos, those that have
    levelled off, and the pair the model mixes up most (`tested`: the photos it was tested on, "153 test photos")."""
    lines = []
    climbing, flat = [], []
    for name, recall in (curves.get("curves") or {}).items():
        half, three_quarters, whole = recall[1], recall[2], recall[3]
        if whole - three_quarters >= STILL_CLIMBING:
            climbing.append((whole - half, name, half, whole))
        elif whole - half <= LEVELLED:
            flat.append(name)
    for _gain, name, half, whole in sorted(climbing, reverse=True)[:3]:
        lines.append(
            f"More photos of “{name}” would probably help: it was found {half:.0%} of the time with half its photos "
            f"and {whole:.0%} with all of them, still climbing."
        )
    if flat:
        names = ", ".join(f"“{name}”" for name in sorted(flat))
        one = len(flat) == 1
        lines.append(
            f"{names} {'has' if one else 'have'} levelled off: more photos of {'it' if one else 'them'} would change "
            "little."
        )
    if curves.get("curves") and not climbing and not flat:
        lines.append("Every class is still improving slowly with more photos; none stands out.")
    for pair in pairs[:1]:
        first, second = pair["classes"]
        example = pair["example"]
        shown = (
            f" (for example {example['path'].rsplit('/', 1)[-1]}: {example['true']}, taken for {example['predicted']})"
            if example
            else ""
        )
        lines.append(
            f"“{first}” and “{second}” are mixed up most: {pair['mistakes']} of the {tested}{shown}. Photos that show "
            "what tells them apart would help most."
        )
    return lines
