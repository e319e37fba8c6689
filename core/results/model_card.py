"""The model card (`MODEL_CARD.md`) that goes with every export."""

from __future__ import annotations

import json

from core.base.markup import md_literal
from core.network.backbones import BACKBONES
from core.results.export_base import Verification
from core.results.formats import ExportFormat


def model_card(run, fmt: ExportFormat, verification: Verification, class_names: list[str], size: int) -> str:
    """What a person receiving the file needs: what goes in, what comes out, how good it is, how to load it."""
    dataset = run.dataset() or {}
    counts = dataset.get("counts") or {}
    photos = sum(sum(row.values()) for row in counts.values())
    status = run.raw_status()
    takes = "any size (it resizes inside)" if fmt.any_size else f"{size} x {size} pixels"
    network = BACKBONES[run.config().backbone].label
    example = fmt.example.format(classes=json.dumps(class_names), size=size, main=fmt.main)
    lines = [
        f"# {md_literal(run.title())}: {fmt.title}",
        "",
        f"- **File:** `{fmt.main}`, checked with {fmt.runtime}.",
        f"- **Classes, in output order:** {', '.join(f'{k}: {md_literal(name)}' for k, name in enumerate(class_names))}.",
        f"- **Input:** RGB photos as float32 numbers from 0 to 255, shape [batch, height, width, 3], {takes}.",
        "- **Preprocessing:** inside the model (resizing and the network's own scaling); give it raw pixels.",
        "- **Output:** one probability per class, summing to 1.",
        f"- **Trained on:** {photos} photos of {len(class_names)} classes "
        f"({', '.join(md_literal(name) for name in class_names)}), starting from "
        f"{network} with {md_literal(status.weights or 'pretrained weights')}, at {size} px.",
        f"- **This file's test accuracy:** {verification.accuracy:.1%} on {verification.photos} test photos "
        f"(the Keras model: {verification.keras_accuracy:.1%}; top class the same on {verification.agreement:.1%}).",
        f"- **Size:** {verification.size_bytes / 1e6:.1f} MB. **Time per photo** on the machine that made it: "
        f"{verification.latency_ms:.1f} ms.",
    ]
    if verification.details.get("opset"):
        lines.append(f"- **ONNX opset:** {verification.details['opset']}.")
    if fmt.key == "tflite-int8":
        fell = verification.details.get("float_ops") or []
        layers = verification.details.get("float_layers") or []
        lines.append(
            f"- **Quantization:** int8, calibrated on {verification.details.get('representative_photos')} training photos; "
            + (f"these operators stay float32: {', '.join(fell)}." if fell else "every operator is int8.")
            + (
                f" The {len(layers)} layers that int8 rounding hurt most stay float32 to keep accuracy: "
                f"{', '.join(layers)}."
                if layers
                else ""
            )
        )
    if fmt.key.startswith("tflite"):
        lines.append("- **Android and iOS:** load the file with LiteRT's Interpreter (ai.google.dev/edge/litert).")
    lines += [
        "",
        "## Example",
        "",
        f"```{fmt.language if fmt.language != 'javascript' else 'html'}",
        example,
        "```",
        "",
    ]
    return "\n".join(lines)
