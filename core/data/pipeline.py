"""Input pipelines: decode and resize every image once, then feed `tf.data` from that.

Decoded, resized pixels are cached as a `.npy` file keyed by the files (path, size,
modification time) and the image size, so a second run on the same data skips
decoding. Small caches are fed from memory; large ones stream from the memory-mapped
file in batches, so memory stays flat however many photos there are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.base.files import atomic_path, cache_home, write_atomic
from core.data.images import load_rgb

DECODER_VERSION = 1
# Arrays up to this size are fed from memory; larger ones stream from their memory-mapped file.
IN_MEMORY_BYTES = int(float(os.environ.get("STUDIO_IN_MEMORY_MB", "1536")) * 1024**2)


def release_pages(array) -> None:
    """Drop a memory-mapped array's pages from this process's resident memory.

    Pages read from (or written to) a memory-mapped file stay counted in the process's
    resident memory until unmapped, so streaming through a large cache would look like
    loading all of it. The data stays in the file and the OS cache; the next read faults
    the pages back in. Arrays that are not memory-mapped are left alone.
    """
    mapping = getattr(array, "_mmap", None)
    if mapping is None or not hasattr(mapping, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    with contextlib.suppress(OSError, ValueError):  # closed, or refused: only memory accounting is lost
        mapping.madvise(mmap.MADV_DONTNEED)


def decode_images(
    paths: Sequence[str],
    image_size: int,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], bool] | None = None,
    workers: int = 4,
) -> tuple[np.ndarray, dict[int, str]]:
    """All `paths` decoded upright to RGB uint8 of `image_size`, as one (N, S, S, 3) array.

    Args:
        progress: called as progress(done, total); returning False cancels (raises InterruptedError).

    Returns:
        The array (memory-mapped from the cache) and {index: reason} for files that failed
        to decode now although they passed the scan (their rows are zeros; drop them).
    """
    cache_dir = Path(cache_dir) if cache_dir else cache_home()
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _cache_key(paths, image_size)
    array_path = cache_dir / f"images-{key}.npy"
    failures_path = cache_dir / f"images-{key}.json"
    if array_path.exists() and failures_path.exists():
        kept = {int(k): v for k, v in json.loads(failures_path.read_text()).items()}
        if progress:
            progress(len(paths), len(paths))
        return np.load(array_path, mmap_mode="r"), kept
    failures: dict[int, str] = {}
    with atomic_path(array_path) as tmp_path:
        array = np.lib.format.open_memmap(
            tmp_path, mode="w+", dtype=np.uint8, shape=(len(paths), image_size, image_size, 3)
        )

        def load(index: int) -> None:
            try:
                array[index] = load_rgb(paths[index], image_size)
            except Exception as error:  # any decoder failure: the file is dropped, never fatal
                failures[index] = f"could not be decoded ({str(error)[:120] or type(error).__name__})"

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for done, _ in enumerate(pool.map(load, range(len(paths))), start=1):
                if done % 512 == 0:  # written pages go to the file, not this process's memory
                    array.flush()
                    release_pages(array)
                if progress and (done % 16 == 0 or done == len(paths)):
                    if progress(done, len(paths)) is False:
                        raise InterruptedError("decoding cancelled")
        array.flush()
    write_atomic(failures_path, json.dumps(failures))
    return np.load(array_path, mmap_mode="r"), failures


def _cache_key(paths: Sequence[str], image_size: int) -> str:
    return files_digest(paths, f"v{DECODER_VERSION}:{image_size}")[:24]


def files_digest(paths: Sequence[str], prefix: str = "") -> str:
    """A digest of `paths` in order, each with its size and modification time: it changes when any file does."""
    digest = hashlib.sha1(prefix.encode())
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}|missing\n".encode())
    return digest.hexdigest()


class LabelledImages(NamedTuple):
    """One split's decoded photos (N, S, S, 3) uint8, their class indices and their files, row for row."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[str]


def decode_splits(plan, image_size: int, progress: Callable[[int, int], bool] | None = None, echo=print):
    """Every file of a `SplitPlan` decoded at `image_size`: {"train"|"val"|"test": LabelledImages}.

    A file that fails to decode now, although it passed the scan, is left out and named.

    Raises:
        InterruptedError: `progress` returned False (Stop was pressed).
    """
    index = {name: k for k, name in enumerate(plan.class_names)}
    everything = [(split, item) for split in ("train", "val", "test") for item in getattr(plan, split)]
    pixels, failures = decode_images([item.path for _, item in everything], image_size, progress=progress)
    for position, reason in failures.items():
        echo(f"Left out {everything[position][1].path}: {reason}")
    data = {}
    for split in ("train", "val", "test"):
        rows = [k for k, (s, _) in enumerate(everything) if s == split and k not in failures]
        labels = np.array([index[everything[k][1].label] for k in rows], dtype=np.int32)
        if rows and rows == list(range(rows[0], rows[-1] + 1)):
            images = pixels[rows[0] : rows[-1] + 1]  # contiguous: stays memory-mapped
        else:
            images = pixels[rows] if rows else np.zeros((0, image_size, image_size, 3), np.uint8)
        data[split] = LabelledImages(images, labels, [everything[k][1].path for k in rows])
    return data


def make_dataset(images: np.ndarray, labels: np.ndarray | None, batch_size: int, shuffle: bool, seed: int = 0):
    """A batched, prefetched `tf.data.Dataset` of (uint8 images, labels) or images alone."""
    import tensorflow as tf

    count = len(images)
    if images.nbytes <= IN_MEMORY_BYTES:
        pixels = np.ascontiguousarray(images)
        data = (pixels, labels) if labels is not None else pixels
        dataset = tf.data.Dataset.from_tensor_slices(data)
        if shuffle:
            dataset = dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True)
        return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    # Too big for memory: shuffle indices, gather each batch from the memory-mapped file.
    size = images.shape[1]
    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(count, seed=seed, reshuffle_each_iteration=True)

    def gather(batch_indices):
        order = np.sort(batch_indices)
        pixels = np.array(images[order])
        release_pages(images)  # memory stays flat however large the file
        return pixels, (labels[order] if labels is not None else np.zeros(len(order), np.int32))

    def load(batch_indices):
        pixels, batch_labels = tf.numpy_function(gather, [batch_indices], (tf.uint8, tf.int32))
        pixels.set_shape((None, size, size, 3))
        batch_labels.set_shape((None,))
        return (pixels, batch_labels) if labels is not None else pixels

    return indices.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
