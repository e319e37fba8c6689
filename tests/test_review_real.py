"""The photo review on real photos with labels flipped on purpose: `python -m core review` puts more of the flipped
photos in its first rows than the one-view logistic-regression ranking does on the same photos."""

import csv
import shutil

import numpy as np
import pytest

from tests.conftest import SHARED, SHARED_V2_05, needs_shared

PER_CLASS = 120  # 600 of flowers5's photos: enough for the folds, quick to read
FLIPPED = 0.1
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def flowers_run(tmp_path_factory):
    """A fast head-only run on 600 flowers5 photos with the shared MobileNetV2 0.5 weights."""
    from core.network.config import RunConfig
    from core.runs.directory import RunDirectory
    from core.training.worker import train_run

    root = tmp_path_factory.mktemp("flowers")
    for folder in sorted((SHARED / "datasets" / "flowers5").iterdir()):
        for photo in sorted(folder.iterdir())[:PER_CLASS]:
            (root / "photos" / folder.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(photo, root / "photos" / folder.name / photo.name)
    config = RunConfig(
        data=str(root / "photos"),
        weights=str(SHARED_V2_05),
        image_size=128,
        head_epochs=5,
        finetune_epochs=0,
        feature_views=1,
    )
    run = RunDirectory.create(root / "runs", config, run_id="flowers")
    assert train_run(run, echo=lambda line: None) == "succeeded", run.status().message
    return run


def _flip(run, seed: int) -> set[str]:
    """Give FLIPPED of the training and validation photos another class in the run's record of its photos."""
    lines = run.splits_path.read_text().splitlines()
    header, rows = lines[0], [line.split(",", 2) for line in lines[1:]]
    names = sorted({label for _, label, _ in rows})
    rng = np.random.default_rng(seed)
    reviewed = [k for k, (split, _, _) in enumerate(rows) if split in ("train", "val")]
    chosen = rng.choice(reviewed, int(FLIPPED * len(reviewed)), replace=False)
    for k in chosen:
        split, label, path = rows[k]
        rows[k] = [split, str(rng.choice([n for n in names if n != label])), path]
    run.splits_path.write_text("\n".join([header, *(",".join(row) for row in rows)]) + "\n")
    return {rows[k][2] for k in chosen}


def _one_view_ranking(run) -> list[str]:
    """The floor: one view of each photo, 5-fold logistic regression, ranked by the probability of the given class."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    from core.results.review import reviewed_photos

    _, kept, features, _ = reviewed_photos(run)  # the review's own features (kept in the run), first version
    learned = [k for k, (split, _, _) in enumerate(kept) if split != "test"]
    rows, features = [kept[k] for k in learned], features[0, learned]
    names = sorted({label for _, label, _ in rows})
    labels = np.array([names.index(label) for _, label, _ in rows])
    given = np.zeros(len(rows))
    for train, held in StratifiedKFold(5, shuffle=True, random_state=0).split(features, labels):
        model = LogisticRegression(max_iter=1000).fit(features[train], labels[train])
        given[held] = model.predict_proba(features[held])[np.arange(len(held)), labels[held]]
    return [rows[k][2] for k in np.argsort(given)]


@pytest.mark.heavy
@pytest.mark.real
@needs_shared
def test_the_review_finds_more_flipped_labels_than_the_one_view_ranking(flowers_run, tmp_path, capsys):
    from core.commands.cli import main

    original = flowers_run.splits_path.read_text()
    found, floor = [], []
    for seed in SEEDS:
        flowers_run.splits_path.write_text(original)
        flipped = _flip(flowers_run, seed)
        out = tmp_path / f"review-{seed}.csv"
        assert main(["review", str(flowers_run.path), "--out", str(out)]) == 0
        rows = list(csv.DictReader(out.open()))
        found.append(len({row["path"] for row in rows[: len(flipped)]} & flipped) / len(flipped))
        floor.append(len(set(_one_view_ranking(flowers_run)[: len(flipped)]) & flipped) / len(flipped))
        assert sum(row["issue"] == "label" for row in rows) >= len(flipped) // 2
    print(f"share of flipped photos in the first N rows: review {found}, one-view ranking {floor}")
    assert np.mean(found) >= np.mean(floor) + 0.05 and min(np.subtract(found, floor)) > 0, (found, floor)
