"""A run on disk: its directory (the single source of truth), its status record, the queue and the
machine-wide training slot.

May import: base, data, network.
"""
