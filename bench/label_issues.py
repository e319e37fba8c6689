"""How many labels flipped on purpose the photo review finds, against the one-view logistic-regression ranking.

For each shared set: the photos' features from the shared MobileNetV2 0.5 weights at 160 px in four versions (the
original, its mirror image, a closer crop and its mirror image, as `core.results.label_issues.views_of` makes them for
a run that flips and zooms), 10% of the labels flipped at random (several seeds), then the share of the flipped
photos among the first N rows (N = the number flipped) of:
- the floor: one version, 5-fold logistic regression with scikit-learn's defaults, ranked by the probability of the
  given class;
- the review (`core.results.label_issues.rank_photos`): every version, strongly regularised, cleanlab's label issues
  first.

    .venv/bin/python bench/label_issues.py                  # flowers5 and hymenoptera, 3 seeds (about 5 minutes)
    .venv/bin/python bench/label_issues.py --sets hymenoptera --seeds 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SHARED = Path(os.environ.get("STUDIO_SHARED", REPO.parent / "shared"))
SETS = {"flowers5": SHARED / "datasets" / "flowers5", "hymenoptera": SHARED / "datasets" / "hymenoptera_data" / "train"}
WEIGHTS = SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
SIZE = 160


def features_of(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(versions, photos, dimensions) features, the labels, the class names."""
    import keras

    from core.data.images import ImageRejected, load_rgb
    from core.results.label_issues import views_of

    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    photos, labels = [], []
    for k, name in enumerate(names):
        for path in sorted((folder / name).iterdir()):
            try:
                photos.append(load_rgb(str(path), SIZE))
                labels.append(k)
            except (OSError, ImageRejected):
                continue
    base = keras.applications.MobileNetV2(
        include_top=False, weights=str(WEIGHTS), input_shape=(SIZE, SIZE, 3), alpha=0.5, pooling="avg"
    )
    prepare = keras.applications.mobilenet_v2.preprocess_input
    views = views_of(np.stack(photos), flip=True, zoom=True)
    features = np.stack([base.predict(prepare(view.astype("float32")), batch_size=64, verbose=0) for view in views])
    return features, np.array(labels), names


def floor_ranking(features: np.ndarray, given: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    probability = np.zeros(len(given))
    for train, held in StratifiedKFold(5, shuffle=True, random_state=seed).split(features, given):
        model = LogisticRegression(max_iter=2000).fit(features[train], given[train])
        probability[held] = model.predict_proba(features[held])[np.arange(len(held)), given[held]]
    return np.argsort(probability)


def main() -> None:
    from core.results.label_issues import rank_photos

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print("| set | photos | flipped | one-view ranking | review | label issues flagged (found) | seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.sets:
        features, labels, names = features_of(SETS[name])
        floor, found, flagged, caught, seconds = [], [], [], [], []
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            flipped = rng.choice(len(labels), int(0.1 * len(labels)), replace=False)
            given = labels.copy()
            for k in flipped:
                given[k] = rng.choice([c for c in range(len(names)) if c != labels[k]])
            wrong = {f"{k}" for k in flipped}
            floor.append(len({f"{k}" for k in floor_ranking(features[0], given, seed)[: len(flipped)]} & wrong))
            started = time.perf_counter()
            rows = rank_photos([("training", names[g], f"{k}") for k, g in enumerate(given)], names, features, seed)
            seconds.append(time.perf_counter() - started)
            found.append(len({row.path for row in rows[: len(flipped)]} & wrong))
            issues = {row.path for row in rows if row.issue == "label"}
            flagged.append(len(issues))
            caught.append(len(issues & wrong))
        n = len(labels) // 10
        print(
            f"| {name} | {len(labels)} | {n} | {np.mean(floor) / n:.3f} | {np.mean(found) / n:.3f} | "
            f"{np.mean(flagged):.0f} ({np.mean(caught) / n:.0%} of the flipped) | {np.mean(seconds):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
