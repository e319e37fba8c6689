"""Fine-Tune Studio's engine: datasets, backbones, two-phase fine-tuning, evaluation and runs.

Nothing here imports Streamlit, and importing the package does not import TensorFlow.
"""
