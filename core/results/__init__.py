"""What a finished run gives: exports checked in their own runtimes, heatmaps, the photo review (confident
learning), what to collect next, suggested classes for unsorted photos, charts, runs compared, and the offline report.

May import: base, data, network, runs, training.
"""
