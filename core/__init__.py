"""Fine-Tune Studio's engine, in packages that follow a run: photos in, a model out, then shared.

Nothing here imports Streamlit, and importing a package does not import TensorFlow. Each package imports
only itself and the packages before it in `LAYERS` (`tests/test_layers.py` checks every import).
"""

# Bottom to top: a package may import from its own layer and the layers before it, never after.
LAYERS = ("base", "data", "network", "runs", "training", "results", "sharing", "commands")
