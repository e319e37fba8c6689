"""Which devices a run trains on, and in what precision: `tf.distribute` and Keras mixed precision.

`place(devices, precision)` is called once in the worker, before TensorFlow starts: it picks the
devices (`--devices all|N|cpu`), makes a `tf.distribute.MirroredStrategy` over them when there are
two or more (else TensorFlow's default strategy: one device, exactly as before) and sets the
global dtype policy. The run builds, compiles, fits, saves and evaluates inside `placement.scope()`.

The batch size a person sets is per device, so the global batch grows with the replicas. The
learning rates grow with it by the square root of the replicas for Adam and RMSprop (Malladi et
al., 2022, "On the SDEs and scaling rules for adaptive gradient algorithms") and linearly for SGD
(Goyal et al., 2017, "Accurate, large minibatch SGD"); the run's status says both.

`STUDIO_CPU_DEVICES=N` splits the processor into N logical devices (`tf.config.set_logical_device_configuration`),
so the distributed path runs, and is tested, on a machine without GPUs.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Any

from core.base.errors import InputError

CPU_DEVICES_ENV = "STUDIO_CPU_DEVICES"
MAX_DEVICES = 64
# Mixed float16 pays off on GPUs with tensor cores: compute capability 7.0 (Volta) and later.
MIXED_NEEDS_CAPABILITY = (7, 0)


class PlacementError(InputError):
    """The devices asked for are not on this machine; the message says what is."""


@dataclass(frozen=True)
class Placement:
    """Where one run trains.

    Attributes:
        strategy: a `tf.distribute.Strategy` (MirroredStrategy for two or more devices).
        devices: the devices' short names ("GPU:0", "CPU:1").
        precision: "mixed_float16" or "float32".
        why: why this precision, in words.
    """

    strategy: Any  # a tf.distribute.Strategy
    devices: tuple[str, ...]
    precision: str
    why: str = ""

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def mixed(self) -> bool:
        return self.precision == "mixed_float16"

    def scope(self):
        """The strategy's scope: every model, optimizer and variable of the run is made inside it."""
        return self.strategy.scope()

    def global_batch(self, per_device: int) -> int:
        return per_device * self.replicas

    def learning_rate_scale(self, optimizer: str) -> float:
        """How much the learning rates grow for the larger global batch (1 on one device)."""
        if self.replicas == 1:
            return 1.0
        return float(self.replicas) if optimizer == "sgd" else math.sqrt(self.replicas)

    def facts(self, per_device: int, global_batch: int, optimizer: str) -> dict:
        """What `status.json` records as `placement`."""
        return {
            "devices": list(self.devices),
            "replicas": self.replicas,
            "strategy": type(self.strategy).__name__ if self.replicas > 1 else "one device",
            "precision": self.precision,
            "precision_why": self.why,
            "batch_per_device": per_device,
            "global_batch": global_batch,
            "learning_rate_scale": round(self.learning_rate_scale(optimizer), 4),
        }


def placement_in_words(facts: dict, node: dict | None = None) -> str:
    """Where a run trains, in plain words, to follow "Training on" or "Trained on": "the processor, 32 photos at
    a time"; "" when the run did not record it. `placement_details` says it for specialists."""
    if not facts:
        return ""
    replicas = int(facts["replicas"])
    where = f" of the cluster's computer {node['host']}" if node and node.get("host") else ""
    if any(device.startswith("GPU") for device in facts["devices"]):
        what = f"a graphics card (GPU){where}" if replicas == 1 else f"{replicas} graphics cards (GPUs){where} at once"
    else:
        what = f"the processor{where}" + (f", split into {replicas} parts that work at once" if replicas > 1 else "")
    return f"{what}, {facts['global_batch']} photos at a time"


def placement_details(facts: dict, node: dict | None = None) -> str:
    """`placement_in_words` for specialists: "CPU:0 in float32, 32 photos per step"; "" when not recorded."""
    if not facts:
        return ""
    devices = ", ".join(facts["devices"])
    precision = "mixed float16" if facts["precision"] == "mixed_float16" else "float32"
    where = f" of the cluster's node {node['host']}" if node and node.get("host") else ""
    if facts["replicas"] == 1:
        return f"{devices}{where} in {precision}, {facts['global_batch']} photos per step"
    return (
        f"{facts['replicas']} devices{where} at once ({devices}, {facts['strategy']}) in {precision}: "
        f"{facts['batch_per_device']} photos per device, {facts['global_batch']} per step, learning rates "
        f"×{facts['learning_rate_scale']:.3g} for the larger batch"
    )


def split_cpu() -> int:
    """Split the processor into `STUDIO_CPU_DEVICES` logical devices (before TensorFlow starts); the count.

    Raises:
        PlacementError: the variable is not a whole number from 1 to MAX_DEVICES, or TensorFlow already started
        with another split.
    """
    import tensorflow as tf

    text = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if not text:
        return 1
    if not text.isdigit() or not 1 <= int(text) <= MAX_DEVICES:
        raise PlacementError(f"{CPU_DEVICES_ENV} must be a whole number from 1 to {MAX_DEVICES}. Received: {text!r}")
    count = int(text)
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if (len(current) if current else 1) == count:
        return count
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise PlacementError(
            f"{CPU_DEVICES_ENV}={count} came too late: TensorFlow had already started in this process. "
            "Set it before starting the worker."
        ) from None
    return count


def place(devices: str, precision: str) -> Placement:
    """The devices and precision of a run, set up for this process (call before building any model).

    Raises:
        PlacementError: more devices asked for than the machine has, in plain words.
    """
    import keras
    import tensorflow as tf

    split_cpu()
    gpus = tf.config.list_physical_devices("GPU")
    if devices == "cpu" or not gpus:
        if gpus:
            _show_only([])
        logical = [d.name for d in tf.config.list_logical_devices("CPU")]
        wanted = len(logical) if devices in ("all", "cpu") else int(devices)
        if wanted > len(logical):
            extra = f" (the processor is split into {len(logical)} by {CPU_DEVICES_ENV})" if len(logical) > 1 else ""
            raise PlacementError(
                f"This run asks for {wanted} devices, but this machine has no GPU that TensorFlow can use, only "
                f"the processor{extra}. Choose 'all' or 'cpu' under Hardware on the Train page (--devices all)."
            )
        chosen, chosen_gpus = logical[:wanted], []
    else:
        wanted = len(gpus) if devices == "all" else int(devices)
        if wanted > len(gpus):
            raise PlacementError(
                f"This run asks for {wanted} GPUs, but this machine has {len(gpus)}. Choose 'all' or a number up "
                f"to {len(gpus)} under Hardware on the Train page (--devices all)."
            )
        _show_only(gpus[:wanted])
        chosen, chosen_gpus = [d.name for d in tf.config.list_logical_devices("GPU")][:wanted], gpus[:wanted]
    strategy = tf.distribute.MirroredStrategy(devices=chosen) if len(chosen) > 1 else tf.distribute.get_strategy()
    mixed, why = _precision(precision, chosen_gpus)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    return Placement(strategy, tuple(_short(name) for name in chosen), "mixed_float16" if mixed else "float32", why)


def current_placement() -> Placement:
    """The placement TensorFlow is in without `place` (a task such as the learning-rate finder): its strategy in
    effect (one device unless called within a strategy's scope) and float32."""
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if tf.distribute.has_strategy():
        devices = list(strategy.extended.worker_devices)
    else:  # TensorFlow's default strategy places everything on the first GPU, else the processor
        devices = [(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU"))[0].name]
    return Placement(strategy, tuple(_short(d) for d in devices), "float32", "float32, the default")


def _show_only(gpus: list) -> None:
    """Make only `gpus` visible to TensorFlow (a no-op when they already are, even after it started)."""
    import tensorflow as tf

    if tf.config.get_visible_devices("GPU") == list(gpus):
        return
    try:
        tf.config.set_visible_devices(gpus, "GPU")
    except RuntimeError:
        raise PlacementError(
            "The GPUs to train on must be chosen before TensorFlow starts, and it had already started in this "
            "process. Start the run from the dashboard or with `python -m core train`."
        ) from None


def _precision(setting: str, gpus: list) -> tuple[bool, str]:
    """Whether to train in mixed float16, and why, from the setting and the chosen GPUs."""
    if setting == "float32":
        return False, "float32 was chosen"
    if setting == "mixed":
        if not gpus:
            return True, "mixed float16 was chosen (on the processor it is slower, not faster)"
        return True, "mixed float16 was chosen"
    capable = bool(gpus) and all(_capability(gpu) >= MIXED_NEEDS_CAPABILITY for gpu in gpus)
    if capable:
        return True, "auto: the GPUs have tensor cores (compute capability 7.0 or higher)"
    return False, "auto: " + ("these GPUs lack tensor cores" if gpus else "no GPU, and processors gain nothing from it")


def _capability(gpu) -> tuple[int, int]:
    import tensorflow as tf

    with contextlib.suppress(Exception):
        return tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0))
    return (0, 0)


def _short(name: str) -> str:
    """'/job:localhost/replica:0/task:0/device:GPU:1' -> 'GPU:1'."""
    return name.rsplit("device:", 1)[-1]


def float32_copy(model):
    """`model` with every layer in float32 and the same weights: what a mixed-precision run keeps and exports,
    so the model file runs the same on a processor, a phone or a web page as one trained in float32."""
    import keras

    def plain(value):
        if isinstance(value, dict):
            if value.get("class_name") == "DTypePolicy" and isinstance(value.get("config"), dict):
                return {**value, "config": {**value["config"], "name": "float32"}}
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = keras.saving.deserialize_keras_object(plain(keras.saving.serialize_keras_object(model)))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    return copy
