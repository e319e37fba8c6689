"""The entry points of processes: the CLI people use (`python -m core`) and the bodies of the task processes.

May import every other package.
"""
