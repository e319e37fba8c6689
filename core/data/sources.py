"""Where a dataset comes from: the built-in demo, a sample set, a zip, or a folder.

`resolve_source` turns the choice a person made into a folder on disk: the demo set is
drawn, a sample set is downloaded once through Keras's own downloader, and a zip is
extracted safely once (`core.data.uploads`) and reused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from core.base.errors import first_line
from core.base.files import data_home, data_root, safe_name
from core.data.datasets import DatasetError, DatasetReport, scan_dataset, with_separate_splits
from core.data.portable import source_elsewhere
from core.data.uploads import extract_zip

SAMPLES = {
    "flowers": {
        "title": "Flower photos (5 classes, 3,670 photos, 220 MB)",
        "origin": "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
        "fname": "flower_photos",
    },
    "cats_vs_dogs": {
        "title": "Cats vs dogs (2 classes, 3,000 photos, 66 MB)",
        "origin": "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip",
        "fname": "cats_and_dogs_filtered",
    },
}


def source_label(source: str) -> str:
    """A dataset choice as a person calls it: the demo, a sample's name, or the folder's or zip's name (never a path)."""
    if source == "demo":
        return "Built-in demo (shapes)"
    if source.startswith("sample:"):
        name = source.split(":", 1)[1]
        return SAMPLES[name]["title"].split(" (")[0] if name in SAMPLES else f"Sample {name}"
    elsewhere = source_elsewhere(source)
    if elsewhere is not None:
        return Path(elsewhere).stem or "photos on another server"
    return Path(source).stem or source


def resolve_source(source: str) -> Path:
    """Turn a dataset choice into a folder on disk.

    `demo` builds the demo set, `sample:NAME` downloads through Keras, a `.zip` is
    extracted safely (once; later calls reuse it), and a folder is used as it is.

    Raises:
        DatasetError: the folder does not exist, a download failed, or the zip is refused.
    """
    if source == "demo":
        from core.data.demo_data import ensure_demo_dataset

        return ensure_demo_dataset(data_home() / "demo")
    if source.startswith("sample:"):
        return download_sample(source.split(":", 1)[1])
    elsewhere = source_elsewhere(source)
    if elsewhere is not None:
        raise DatasetError(
            f"The photos this run used ({elsewhere or 'a folder'}) are not on this server: the run was opened from a "
            "file. Choose photos on this server to train again."
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"{source} does not exist. Check the path.")
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise DatasetError(f"{path.name} is a file, not a folder or a .zip. Choose a folder of class folders.")
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha1").hexdigest()
        target = data_home() / "extracted" / f"{safe_name(path.stem, fallback='dataset')}-{digest[:12]}"
        done = target / ".extracted"
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            try:
                extract_zip(path, target)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            done.write_text(json.dumps({"zip": str(path)}))
        return target
    return path


def download_sample(name: str) -> Path:
    """Download and extract a sample set with Keras's own downloader (cached after once)."""
    if name not in SAMPLES:
        raise DatasetError(f"Unknown sample {name!r}. Choose one of: {', '.join(SAMPLES)}")
    sample = SAMPLES[name]
    import keras

    try:
        path = keras.utils.get_file(sample["fname"], origin=sample["origin"], extract=True)
    except Exception as error:  # Keras raises plain Exception for network failures
        raise DatasetError(
            f"Could not download the sample '{name}' ({first_line(error)}). This machine may be offline: "
            f"download {sample['origin']} on a computer with internet and upload it as a .zip, "
            "or choose a folder of your own photos."
        ) from None
    return Path(path)


def load_dataset(data: str, val_data: str | None = None, test_data: str | None = None) -> DatasetReport:
    """Scan the chosen photos, and the separately given validation and test folders, if any.

    Raises:
        DatasetError: a source that cannot be found, downloaded or unpacked.
    """
    report = scan_dataset(resolve_source(data))
    extras = {
        split: scan_dataset(resolve_source(path)) for split, path in (("val", val_data), ("test", test_data)) if path
    }
    return with_separate_splits(report, extras)


def server_folders() -> list[str]:
    """The dataset folders in the data folder (`STUDIO_DATA_ROOT`), by name."""
    root = data_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def server_folder(name: str) -> Path:
    """The dataset folder `name` of the data folder, its links followed.

    Raises:
        DatasetError: the name, or a link inside the data folder, leads outside it.
    """
    root = data_root().resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise DatasetError("That folder is outside the data folder and cannot be used.")
    return path
