"""Who gets in and what leaves the server: read-only links, the password and sessions, and a run kept as one
file (`.studio.zip`) and opened elsewhere.

May import: base, data, network, runs, training, results.
"""
