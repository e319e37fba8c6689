"""Which layers learn: the unfreeze plan, the layer table, each phase's trainable set, the cut.

A plan is parsed once from the text people type (`auto`, `none`, `all`, `top:N`,
`from:N`, `block:NAME`, `layers:I,J`) into an `UnfreezePlan`; everything else passes the
object. Masks are computed from layer names alone, so the dashboard can show a plan
without building the network.

BatchNormalization layers never learn in phase 2 (when the base is pretrained): updating
their statistics on a small dataset ruins what the network learned on ImageNet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from core.base.errors import InputError
from core.network.backbones import BackboneSpec


class UnfreezeKind(StrEnum):
    AUTO = "auto"
    NONE = "none"
    ALL = "all"
    TOP = "top"
    FROM = "from"
    BLOCK = "block"
    LAYERS = "layers"


_TAKES_COUNT = (UnfreezeKind.TOP, UnfreezeKind.FROM)


class PlanError(InputError):
    """An unfreeze plan that cannot be read, or that names layers or blocks the network does not have."""


@dataclass(frozen=True)
class UnfreezePlan:
    """What phase 2 unfreezes.

    Attributes:
        kind: the rule.
        count: N for `top:N` (the last N layers) and `from:N` (all but the first N).
        block: the block phase 2 starts from, for `block:NAME`.
        layers: layer indices into the base, for `layers:I,J`.
    """

    kind: UnfreezeKind = UnfreezeKind.AUTO
    count: int = 0
    block: str = ""
    layers: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str | UnfreezePlan) -> UnfreezePlan:
        """Raises:
        PlanError: text that is none of the forms, with the forms listed.
        """
        if isinstance(text, UnfreezePlan):
            return text
        forms = "auto, none, all, top:N, from:N, block:NAME or layers:I,J"
        name, _, value = str(text).strip().partition(":")
        try:
            kind = UnfreezeKind(name)
        except ValueError:
            raise PlanError(f"An unfreeze plan must be {forms}. Received: {text!r}") from None
        try:
            if kind in _TAKES_COUNT and int(value) >= 0:
                return cls(kind, count=int(value))
            if kind is UnfreezeKind.BLOCK and value.strip():
                return cls(kind, block=value.strip())
            if kind is UnfreezeKind.LAYERS:
                indices = {int(v) for v in value.replace(" ", "").split(",") if v}
                if all(i >= 0 for i in indices):
                    return cls(kind, layers=tuple(sorted(indices)))
        except ValueError:
            raise PlanError(f"An unfreeze plan must be {forms}. Received: {text!r}") from None
        if value or kind in (*_TAKES_COUNT, UnfreezeKind.BLOCK, UnfreezeKind.LAYERS):
            raise PlanError(f"An unfreeze plan must be {forms}. Received: {text!r}")
        return cls(kind)

    def __str__(self) -> str:
        if self.kind in _TAKES_COUNT:
            return f"{self.kind}:{self.count}"
        if self.kind is UnfreezeKind.BLOCK:
            return f"block:{self.block}"
        if self.kind is UnfreezeKind.LAYERS:
            return "layers:" + ",".join(str(i) for i in self.layers)
        return str(self.kind)

    def resolve(self, spec: BackboneSpec) -> UnfreezePlan:
        """`auto` becomes the backbone's recommended plan; other plans are already concrete."""
        if self.kind is not UnfreezeKind.AUTO:
            return self
        if spec.recommended_unfreeze:
            return UnfreezePlan(UnfreezeKind.BLOCK, block=spec.recommended_unfreeze)
        return UnfreezePlan(UnfreezeKind.TOP, count=20)

    @property
    def trains_nothing(self) -> bool:
        return self.kind is UnfreezeKind.NONE or (self.kind is UnfreezeKind.LAYERS and not self.layers)

    def mask(self, spec: BackboneSpec, layer_names: Sequence[str]) -> list[bool]:
        """For each base layer, whether the plan unfreezes it (before the BatchNormalization rule).

        Raises:
            PlanError: a block or layer index the base does not have, with what it does have.
        """
        plan = self.resolve(spec)
        count = len(layer_names)
        if plan.kind is UnfreezeKind.NONE:
            return [False] * count
        if plan.kind is UnfreezeKind.ALL:
            return [True] * count
        if plan.kind is UnfreezeKind.TOP:
            return [i >= count - plan.count for i in range(count)]
        if plan.kind is UnfreezeKind.FROM:
            if not 0 <= plan.count < count:
                raise PlanError(f"{spec.label} has {count} layers (0 to {count - 1}). Received: from:{plan.count}")
            return [i >= plan.count for i in range(count)]
        if plan.kind is UnfreezeKind.BLOCK:
            blocks = spec.layer_blocks(layer_names)
            if plan.block not in blocks:
                known = ", ".join(dict.fromkeys(blocks))
                raise PlanError(f"{spec.label} has no block {plan.block!r}. Its blocks: {known}")
            start = blocks.index(plan.block)
            return [i >= start for i in range(count)]
        bad = [i for i in plan.layers if not 0 <= i < count]
        if bad:
            raise PlanError(f"{spec.label} has {count} layers (0 to {count - 1}). Received indices: {bad}")
        chosen = set(plan.layers)
        return [i in chosen for i in range(count)]

    def describe(self, spec: BackboneSpec) -> str:
        """The plan in plain words, for a page or a log line."""
        plan = self.resolve(spec)
        words = {
            UnfreezeKind.NONE: "nothing (only the head trains)",
            UnfreezeKind.ALL: "the whole network",
            UnfreezeKind.TOP: f"the last {plan.count} layers",
            UnfreezeKind.FROM: f"every layer after the first {plan.count}",
            UnfreezeKind.BLOCK: f"the top of the network, from its part “{plan.block}” on",
            UnfreezeKind.LAYERS: f"{len(plan.layers)} chosen layers",
        }[plan.kind]
        return f"{words} (recommended)" if self.kind is UnfreezeKind.AUTO else words


def learns_in_phase2(unfrozen: bool, is_batch_norm: bool, has_weights: bool, freeze_batch_norm: bool = True) -> bool:
    """The one rule for a base layer in phase 2: unfrozen by the plan, has weights, and not a
    BatchNormalization layer of a pretrained base."""
    return unfrozen and has_weights and not (is_batch_norm and freeze_batch_norm)


def learning_layers(rows: list[dict], mask: list[bool]) -> list[bool]:
    """Whether each row of the layer table (`layer_table`, as dicts) learns in phase 2 under the plan's `mask`."""
    return [learns_in_phase2(m, r["is_batch_norm"], r["params"] > 0) for m, r in zip(mask, rows, strict=True)]


def plan_of_ticks(rows: list[dict], ticked: list[bool]) -> UnfreezePlan:
    """The plan a person made by ticking layers in the table (BatchNormalization layers never learn)."""
    chosen = (row["index"] for row, tick in zip(rows, ticked, strict=True) if tick and not row["is_batch_norm"])
    return UnfreezePlan(UnfreezeKind.LAYERS, layers=tuple(chosen))


def phase2_weights(rows: list[dict], learns: list[bool], plan: UnfreezePlan) -> int:
    """The base's weights that learn in phase 2 (the head's come on top)."""
    if plan.trains_nothing:
        return 0
    return int(sum(row["params"] for row, learning in zip(rows, learns, strict=True) if learning))


@dataclass(frozen=True)
class LayerRow:
    index: int
    name: str
    kind: str
    block: str
    params: int
    is_batch_norm: bool


def layer_table(base, spec: BackboneSpec) -> list[LayerRow]:
    """One row per base layer: its block, its weight count (Keras's `count_params`) and whether it is BatchNormalization."""
    import keras

    blocks = spec.layer_blocks([layer.name for layer in base.layers])
    return [
        LayerRow(
            index=index,
            name=layer.name,
            kind=type(layer).__name__,
            block=block,
            params=int(layer.count_params()) if layer.built else 0,
            is_batch_norm=isinstance(layer, keras.layers.BatchNormalization),
        )
        for index, (layer, block) in enumerate(zip(base.layers, blocks, strict=True))
    ]


def set_phase(base, phase: int, mask: Sequence[bool], freeze_batch_norm: bool = True) -> None:
    """Phase 1: the whole base frozen. Phase 2: the layers `mask` unfreezes train, by `learns_in_phase2`.

    Recompile afterwards: Keras fixes the trainable set at compile time.
    """
    import keras

    if phase == 1:
        base.trainable = False
        return
    base.trainable = True
    for layer, unfrozen in zip(base.layers, mask, strict=True):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        # A layer without weights has nothing to train; leaving it trainable changes nothing.
        layer.trainable = learns_in_phase2(bool(unfrozen), is_bn, True, freeze_batch_norm)


def count_trainable(model) -> int:
    """Trainable weights of `model` as Keras counts them."""
    import numpy as np

    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def find_cut(base, mask: Sequence[bool]) -> str:
    """The base layer where a cached frozen bottom can end: at or before the first unfrozen layer.

    The cut must be a single tensor that everything above depends on alone (no skip
    connection may jump over it), so it moves down until a sub-model can be built there.
    Returns "" when nothing unfreezes.
    """
    import keras

    if True not in mask:
        return ""
    for index in range(list(mask).index(True), 0, -1):
        layer = base.layers[index]
        if isinstance(layer.input, (list, tuple)):
            continue
        try:
            keras.Model(layer.input, base.output)
        except ValueError:
            continue
        return layer.name
    return ""
