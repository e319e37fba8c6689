"""The classifier a run trains: built from its backbone and weights, or resumed from its last checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from core.network.backbones import BackboneSpec, get_backbone
from core.network.freezing import UnfreezePlan
from core.runs.directory import RunDirectory
from core.runs.status import ResumePoint
from core.training.failures import Echo
from core.training.prepare import Prepared


@dataclass
class Classifier:
    """The classifier and what decides which of its layers learn.

    Attributes:
        base: the pretrained network, nested inside `model`.
        unfreeze: the plan, resolved for this backbone (never `auto`).
        mask: per base layer, whether the plan unfreezes it.
        freeze_batch_norm: False for random weights, whose statistics are worth nothing.
        weights_path: the pretrained weights file; None for random weights.
        resume: where a resumed run picks up; None for a fresh run.
    """

    model: object
    base: object
    spec: BackboneSpec
    unfreeze: UnfreezePlan
    mask: list[bool]
    freeze_batch_norm: bool
    weights_path: str | None
    resume: ResumePoint | None = None


def build_or_resume(run: RunDirectory, prepared: Prepared, echo: Echo) -> Classifier:
    """A new classifier with the chosen weights, or the interrupted run's, as of its last finished epoch."""
    import keras

    from core.network.freezing import count_trainable, set_phase
    from core.network.model import build_classifier
    from core.network.weights import build_base, resolve_weights

    config = prepared.config
    keras.utils.set_random_seed(config.seed)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()  # same seed, same result (the page promises it)
    spec = get_backbone(config.backbone)
    choice = resolve_weights(spec, config.image_size, config.weights)
    echo(f"Backbone {spec.label} at {config.image_size} px with {choice.description}.")
    resume = run.resume_point()
    if resume is None:
        base = build_base(spec, config.image_size, choice)
        model = build_classifier(
            base,
            spec,
            len(prepared.class_names),
            config.image_size,
            config.augmentation,
            pooling=config.pooling,
            head_units=config.head_units,
            dropout=config.dropout,
            seed=config.seed,
            pretrained=choice.kind != "none",
        )
        run.update_status(base_layer=base.name)
    else:
        model = keras.models.load_model(run.last_checkpoint_path, safe_mode=True)
        base = model.get_layer(run.raw_status().base_layer)
        run.truncate_history(resume.epochs_done)
        echo(f"Resuming after epoch {resume.epochs_done} (phase {resume.phase}) from the last checkpoint.")
    unfreeze = config.unfreeze.resolve(spec)
    mask = unfreeze.mask(spec, [layer.name for layer in base.layers])
    classifier = Classifier(model, base, spec, unfreeze, mask, choice.kind != "none", choice.path, resume)
    set_phase(base, 2, mask, classifier.freeze_batch_norm)
    phase2 = count_trainable(model)
    set_phase(base, 1, mask)
    run.update_status(
        weights=choice.description,
        weights_kind=choice.kind,
        unfreeze=str(unfreeze),
        class_names=prepared.class_names,
        total_params=int(model.count_params()),
        trainable_params_phase1=count_trainable(model),
        trainable_params_phase2=phase2,
    )
    return classifier
