"""Convert a SavedModel to a TensorFlow.js graph model: `python core/results/tfjs_convert.py SAVED_MODEL OUT_DIR`.

Run in its own process with the converter's folder on PYTHONPATH (`core.results.export.ensure_tfjs_tools`).
`tensorflowjs` imports three things this conversion never uses and that are not installed beside
it (TensorFlow Decision Forests, TensorFlow Hub and its JAX converter); they are registered as
empty modules first, so only the converter's own SavedModel path runs.
"""

import sys
import types

for name in ("tensorflow_decision_forests", "tensorflow_hub", "tensorflowjs.converters.jax_conversion"):
    placeholder = types.ModuleType(name)
    placeholder.convert_jax = None  # type: ignore[attr-defined]
    sys.modules[name] = placeholder

from tensorflowjs.converters import tf_saved_model_conversion_v2  # noqa: E402

if __name__ == "__main__":
    saved_model, output = sys.argv[1:3]
    tf_saved_model_conversion_v2.convert_tf_saved_model(
        saved_model, output, signature_def="serve", saved_model_tags="serve"
    )
