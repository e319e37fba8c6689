"""Where a backbone's starting weights come from: ImageNet, a file, or nothing.

`imagenet` first looks for the file Keras would use in its cache; then for the same
family and width saved for another input size (headless convolution weights fit any
size, but Keras names its files by size and would otherwise go to the network); then
lets Keras download it. Offline, with no file to be found, the error names the file
and the folder to put it in.
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from core.base.errors import InputError
from core.base.files import atomic_path, data_home, write_atomic
from core.network.backbones import BackboneSpec

WEIGHTS_HOST = "storage.googleapis.com"  # where keras.applications downloads ImageNet weights from


class WeightsUnavailable(InputError):
    """Weights that cannot be had here; the message says which file and where it goes."""


@dataclass(frozen=True)
class WeightsChoice:
    """The resolved weights: `kind` is imagenet, file or none; `path` the file to load."""

    kind: str
    path: str | None
    description: str


def keras_models_dir() -> Path:
    """Keras's weight cache: `$KERAS_HOME/models`, default `~/.keras/models` (as Keras decides it)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    if not os.access(os.path.dirname(home) or "/", os.W_OK) and not os.path.isdir(home):
        home = os.path.join("/tmp", ".keras")
    return Path(home) / "models"


def uploaded_weights_dir() -> Path:
    """Where weights files uploaded in the dashboard are kept (`STUDIO_DATA/weights`)."""
    return data_home() / "weights"


def weights_search_dirs() -> list[Path]:
    """Keras's cache, then every folder in `STUDIO_WEIGHTS_DIRS` (separated like PATH), `./weights`, and the
    dashboard's uploaded weights."""
    dirs = [keras_models_dir()]
    extra = os.environ.get("STUDIO_WEIGHTS_DIRS", "")
    dirs.extend(Path(p).expanduser() for p in extra.split(os.pathsep) if p)
    dirs += [Path("weights").absolute(), uploaded_weights_dir()]
    return [d for d in dict.fromkeys(dirs)]


_PROBE: dict[str, float | bool] = {"at": -math.inf, "answer": False}


def downloads_possible(timeout: float = 2.0, max_age: float = 120.0) -> bool:
    """Whether Keras's weight storage answers from here; False on an offline machine (no name lookup, no route).

    `STUDIO_OFFLINE=1` says so without asking. The answer is kept for `max_age` seconds.
    """
    if os.environ.get("STUDIO_OFFLINE") == "1":
        return False
    if time.monotonic() - _PROBE["at"] < max_age:
        return bool(_PROBE["answer"])
    try:
        with socket.create_connection((WEIGHTS_HOST, 443), timeout=timeout):
            answer = True
    except OSError:
        answer = False
    _PROBE.update(at=time.monotonic(), answer=answer)
    return answer


def find_local_imagenet(spec: BackboneSpec, image_size: int) -> Path | None:
    """A local file of `spec`'s ImageNet weights usable at `image_size`, without any network."""
    exact = spec.weights_filename(image_size)
    pattern = re.compile(spec.weights_glob)
    for folder in weights_search_dirs():
        if (folder / exact).is_file():
            return folder / exact
    for folder in weights_search_dirs():
        if folder.is_dir():
            for candidate in sorted(folder.iterdir()):
                if pattern.match(candidate.name) and candidate.is_file():
                    return candidate
    return None


def describe_missing(spec: BackboneSpec, image_size: int) -> str:
    """Plain words for "these weights are not here", with the way out."""
    return (
        f"The ImageNet weights for {spec.label} are not on this machine and could not be downloaded "
        f"(is it offline?). Put the file {spec.weights_filename(image_size)} (or the same file saved for "
        f"another input size) in {keras_models_dir()}, or choose a weights file, or train from random "
        "weights (much less accurate)."
    )


def resolve_weights(spec: BackboneSpec, image_size: int, weights: str, download: bool = True) -> WeightsChoice:
    """Decide which weights file a run loads.

    Args:
        weights: `imagenet`, `none`, or a path to a `.h5`/`.weights.h5` file.
        download: for `imagenet`, let Keras download when no local file is found.

    Raises:
        WeightsUnavailable: the file is missing, or ImageNet weights cannot be had offline.
    """
    if weights in ("none", "", None):
        return WeightsChoice("none", None, "random weights (no pretraining): expect much lower accuracy")
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsUnavailable(f"The weights file {weights} does not exist.")
        return WeightsChoice("file", str(path), f"weights from {path.name}")
    local = find_local_imagenet(spec, image_size)
    if local is not None:
        return WeightsChoice("imagenet", str(local), f"ImageNet weights ({local.name})")
    if not download:
        raise WeightsUnavailable(describe_missing(spec, image_size))
    try:
        spec.build(max(spec.min_size, image_size), weights="imagenet")
    except Exception as error:  # Keras raises plain Exception on a failed fetch
        message = describe_missing(spec, image_size)
        raise WeightsUnavailable(f"{message} (Keras said: {str(error).splitlines()[0][:200]})") from None
    local = find_local_imagenet(spec, image_size)
    if local is None:
        raise WeightsUnavailable(describe_missing(spec, image_size))
    return WeightsChoice("imagenet", str(local), f"ImageNet weights ({local.name}, downloaded)")


def build_base(spec: BackboneSpec, image_size: int, choice: WeightsChoice):
    """Build the headless base and load `choice` into it.

    Raises:
        WeightsUnavailable: the file does not fit this architecture.
    """
    base = spec.build(image_size, weights=None)
    if choice.path:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                base.load_weights(choice.path)
                error_text = ""
            except Exception as error:
                error_text = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        # Keras only warns when parts of a file do not match and keeps random weights there:
        # half-loaded weights would train badly without a word, so that is an error too.
        skipped = [str(w.message) for w in caught if "Skipping" in str(w.message) or "freshly" in str(w.message)]
        if error_text or skipped:
            reason = error_text or skipped[0][:200]
            raise WeightsUnavailable(
                f"The weights file {Path(choice.path).name} does not fit {spec.label} ({reason}). "
                "Choose the file made for this backbone."
            )
    return base


def stage_uploaded_weights(spec: BackboneSpec, image_size: int, content: bytes) -> Path:
    """An uploaded weights file, kept aside (under a name no search finds) until it has been checked."""
    folder = uploaded_weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    incoming = folder / f".incoming-{spec.weights_filename(image_size)}"
    write_atomic(incoming, content)
    return incoming


def install_staged_weights(incoming: Path, spec: BackboneSpec, image_size: int) -> Path:
    """A checked weights file put where training finds it, in one rename: a run never sees half of it."""
    target = uploaded_weights_dir() / spec.weights_filename(image_size)
    with atomic_path(target) as scratch:
        incoming.rename(scratch)
    return target
