"""From a run directory to a trained, evaluated model: what blocks Start, the time estimate, cached features,
the two phases with their callbacks, the kept model, the test and calibration, the learning-rate finder, what a
person watching sees, and runs sent to a Ray cluster.

May import: base, data, network, runs.
"""
