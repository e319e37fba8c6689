"""Decoding once into a cached array, splits decoded row for row, and tf.data batches from memory or from disk."""

import json

import numpy as np
import pytest

from core.base.files import cache_home
from core.data import pipeline
from core.data.datasets import scan_dataset
from core.data.pipeline import decode_images, decode_splits, make_dataset
from core.data.splits import make_splits


def test_decoding_is_cached_by_the_files_and_a_failure_is_named_not_fatal(make_dataset, tmp_path):
    data = make_dataset({"red": 3, "green": 3})
    paths = sorted(str(p) for p in data.rglob("*.png"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    pixels, failures = decode_images([*paths, str(broken)], 16)
    assert pixels.shape == (7, 16, 16, 3) and pixels.dtype == np.uint8 and list(failures) == [6]
    assert "could not be decoded" in failures[6]
    cached = sorted(cache_home().glob("images-*.npy"))
    assert len(cached) == 1 and not list(cache_home().glob(".*"))  # no temporary file left behind
    calls = []
    again, _ = decode_images([*paths, str(broken)], 16, progress=lambda done, total: calls.append((done, total)))
    assert np.array_equal(np.asarray(again), np.asarray(pixels)) and calls == [(7, 7)]  # from the cache
    (data / "red" / "red_00.png").touch()  # a changed file is decoded again
    decode_images([*paths, str(broken)], 16)
    assert len(list(cache_home().glob("images-*.npy"))) == 2


def test_decoding_can_be_cancelled_and_leaves_no_cache(make_dataset):
    paths = sorted(str(p) for p in make_dataset({"red": 20, "green": 20}).rglob("*.png"))
    with pytest.raises(InterruptedError, match="cancelled"):
        decode_images(paths, 16, progress=lambda done, total: False)
    assert not list(cache_home().glob("*.npy")) and not list(cache_home().glob(".*"))


def test_splits_are_decoded_row_for_row_with_their_labels(make_dataset):
    plan = make_splits(scan_dataset(make_dataset({"red": 6, "green": 4})), 0.2, 0.2, seed=3)
    data = decode_splits(plan, 16, echo=lambda line: None)
    for split in ("train", "val", "test"):
        part = data[split]
        assert len(part.images) == len(part.labels) == len(part.paths) == len(getattr(plan, split))
        expected = [plan.class_names.index(item.label) for item in getattr(plan, split)]
        assert part.labels.tolist() == expected


@pytest.mark.parametrize("in_memory", [True, False])
def test_batches_hold_every_image_once_per_epoch_with_its_label(in_memory, monkeypatch):
    if not in_memory:
        monkeypatch.setattr(pipeline, "IN_MEMORY_BYTES", 0)
    images = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    labels = np.arange(10, dtype=np.int32) % 3
    batches = list(make_dataset(images, labels, 4, shuffle=True, seed=1).as_numpy_iterator())
    seen = np.concatenate([b[0][:, 0, 0, 0] for b in batches])
    assert sorted(seen.tolist()) == list(range(10)) and [len(b[0]) for b in batches] == [4, 4, 2]
    assert np.array_equal(np.concatenate([b[1] for b in batches]), seen.astype(np.int32) % 3)
    images_only = list(make_dataset(images, None, 4, shuffle=False).as_numpy_iterator())
    assert np.concatenate(images_only)[:, 0, 0, 0].tolist() == list(range(10))


def test_a_failure_list_is_json_keyed_by_position(make_dataset):
    paths = sorted(str(p) for p in make_dataset({"red": 2, "green": 2}).rglob("*.png"))
    decode_images(paths, 8)
    (failures,) = cache_home().glob("images-*.json")
    assert json.loads(failures.read_text()) == {}
