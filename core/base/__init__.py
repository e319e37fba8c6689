"""What every other package stands on: errors in words, atomic files, detached processes and the cached task
processes that run them, the declaration of a setting, and text made safe for where it lands.

Imports nothing from the studio.
"""
