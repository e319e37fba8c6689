"""Splitting a scanned dataset into training, validation and test photos, stratified by class and seeded."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass

from core.data.datasets import SPLITS, DatasetReport, ImageItem


@dataclass(frozen=True)
class SplitPlan:
    """Which file is in which split, decided once and recorded in the run."""

    class_names: list[str]
    train: list[ImageItem]
    val: list[ImageItem]
    test: list[ImageItem]
    notes: list[str]

    def rows(self) -> list[dict[str, str]]:
        return [
            {"split": name, "label": item.label, "path": item.path}
            for name, part in (("train", self.train), ("val", self.val), ("test", self.test))
            for item in part
        ]

    def to_csv(self, used: set[str] | None = None) -> str:
        """`split,label,path` for every file (of those in `used`, when given): exactly which file went where."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=("split", "label", "path"))
        writer.writeheader()
        writer.writerows(row for row in self.rows() if used is None or row["path"] in used)
        return buffer.getvalue()


def make_splits(report: DatasetReport, val_fraction: float, test_fraction: float, seed: int) -> SplitPlan:
    """Use the dataset's own splits where given; carve the missing ones from train, stratified.

    A dataset with `train/` and `val/` but no `test/` keeps `val/` as the untouched test
    set and takes the validation images (used to pick the best epoch) from `train/`, so
    the reported test accuracy was never used to choose anything.
    """
    notes: list[str] = []
    by_split: dict[str, list[ImageItem]] = {s: [] for s in ("", *SPLITS)}
    for item in report.items:
        by_split[item.split].append(item)
    if report.layout == "classes":
        train, val, test = _stratified(by_split[""], val_fraction, test_fraction, seed)
        notes.append(
            f"Split {len(report.items)} images by class: {len(train)} train, {len(val)} validation, "
            f"{len(test)} test (seed {seed})."
        )
    else:
        train, val, test = by_split["train"], by_split["val"], by_split["test"]
        if not test and val:
            test, val = val, []
            notes.append("No test folder: the validation folder is kept aside as the test set.")
        if not val:
            train, val, _ = _stratified(train, val_fraction, 0.0, seed)
            notes.append(f"Validation images ({len(val)}) taken from train, {val_fraction:.0%} of each class.")
    return SplitPlan(report.class_names, train, val, test, notes)


def _stratified(items, val_fraction, test_fraction, seed):
    """Per class, seeded; each exact copy goes where its original goes."""
    paths = {item.path for item in items}
    copies = [item for item in items if item.copy_of in paths]
    per_class: dict[str, list[ImageItem]] = {}
    for item in sorted(items, key=lambda i: i.path):
        if item.copy_of not in paths:
            per_class.setdefault(item.label, []).append(item)
    rng = random.Random(seed)
    train, val, test = [], [], []
    for label in sorted(per_class):
        group = per_class[label]
        rng.shuffle(group)
        n = len(group)
        n_test = round(n * test_fraction) if n >= 3 else 0
        n_val = round(n * val_fraction) if n >= 2 else 0
        if test_fraction and n >= 3:
            n_test = max(n_test, 1)
        if n >= 2:
            n_val = max(n_val, 1)
        n_test = min(n_test, max(n - n_val - 1, 0))
        test.extend(group[:n_test])
        val.extend(group[n_test : n_test + n_val])
        train.extend(group[n_test + n_val :])
    home = {item.path: part for part in (train, val, test) for item in part}
    for item in copies:
        home[item.copy_of].append(item)
    return train, val, test
