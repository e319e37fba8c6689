"""The network: the backbone registry, its starting weights, which layers learn, the devices and precision,
building the classifier, the run's configuration and the recipes, and loading a saved model safely.

May import: base, data.
"""
