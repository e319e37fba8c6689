"""Which heatmap method points where the model looked: the pointing game and the deletion score, per family and size.

For each family, size and seed: cluttered photos whose class is the colour of one small object at a random place
(`core.results.heatmap_check`), a classifier of the studio's shape (the backbone frozen, a new head trained on its
pooled features by logistic regression, as fast mode does), and for the test photos it gets right:
- pointing: the share whose heatmap's hottest point falls on the object (5% of the side's slack);
- deletion: how far the class's probability falls, on average, when the hottest 10, 20 and 30% of the photo is
  hidden, against hiding random parts of the same size (the `x` column: the method's fall over random's);
- seconds per photo on this machine.

MobileNetV2 0.5 and MobileNet v1 0.25 start from the shared ImageNet weights; EfficientNetB0 from random weights
(there are none in ../shared), with the same head on top (its "right" column says how often it is).

    .venv/bin/python bench/heatmaps.py                                   # every family, 160 and 224 px, 3 seeds
    .venv/bin/python bench/heatmaps.py --families mobilenet_v2_0.5 --sizes 160 --seeds 1
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
WEIGHTS = {
    "mobilenet_v2_0.5": SHARED / "weights" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5",
    "mobilenet_0.25": SHARED / "weights" / "mobilenet_2_5_224_tf_no_top.h5",
    "efficientnet_b0": None,
}
FRACTIONS = (0.1, 0.2, 0.3)


def main(argv=None) -> int:
    from core.results.explain import CHOSEN, METHODS, UNSURE_BELOW, heatmaps
    from core.results.heatmap_check import deletion_drops, points_at, scene_classifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(WEIGHTS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[160, 224])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=40, help="training photos per class (test: half as many)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    args = parser.parse_args(argv)
    import keras

    by_confidence: list[tuple[float, bool]] = []  # the chosen method's (top score, points at the object)
    print("| family | size | method | right | pointing | deletion (method / random) | x | s per photo |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for family in args.families:
        for size in args.sizes:
            totals: dict[str, list] = {m: [0, 0, [], [], 0.0] for m in args.methods}
            accuracy = []
            for seed in range(args.seeds):
                keras.backend.clear_session()
                weights = WEIGHTS[family]
                model, test = scene_classifier(family, size, str(weights) if weights else None, seed, args.per_class)
                pixels = np.stack([s.pixels for s in test]).astype(np.float32)
                answers = model.predict(pixels, verbose=0).argmax(axis=1)
                accuracy.append(float(np.mean([a == s.label for s, a in zip(test, answers, strict=True)])))
                right = [s for s, a in zip(test, answers, strict=True) if a == s.label and s.box]
                if not right:
                    continue
                photos = np.stack([s.pixels for s in right]).astype(np.float32)
                for method in args.methods:
                    started = time.perf_counter()
                    maps = heatmaps(model, photos, None, method)
                    spent = time.perf_counter() - started
                    row = totals[method]
                    hits = [points_at(e.heatmap, s.box) for e, s in zip(maps, right, strict=True)]
                    if method == CHOSEN:
                        by_confidence += [(float(e.probabilities.max()), h) for e, h in zip(maps, hits, strict=True)]
                    row[0] += sum(hits)
                    row[1] += len(right)
                    ours, chance = deletion_drops(
                        model, right, [e.heatmap for e in maps], [s.label for s in right], FRACTIONS, seed
                    )
                    row[2].append(np.mean(ours))
                    row[3].append(np.mean(chance))
                    row[4] += spent
            for method, (hits, count, ours, chance, spent) in totals.items():
                if not count:
                    continue
                ours_mean, chance_mean = float(np.mean(ours)), float(np.mean(chance))
                print(
                    f"| {family} | {size} | {method} | {np.mean(accuracy):.2f} | {hits / count:.1%} "
                    f"| {ours_mean:.3f} / {chance_mean:.3f} | {ours_mean / max(chance_mean, 1e-6):.1f} "
                    f"| {spent / count:.3f} |",
                    flush=True,
                )
    if by_confidence:
        print(f"\n{CHOSEN}, right answers by the model's top score (no heatmap is painted under {UNSURE_BELOW:.0%}):\n")
        print("| top score | photos | pointing |\n| --- | --- | --- |")
        for low, high in ((0.0, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01)):
            hits = [h for p, h in by_confidence if low <= p < high]
            if hits:
                print(f"| {low:.0%} to {min(high, 1):.0%} | {len(hits)} | {np.mean(hits):.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
