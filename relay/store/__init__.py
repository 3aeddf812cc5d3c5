"""The relay's runtime data behind interfaces (`interfaces.py`): the learned suppression
list, the limit counters and the login throttle. `sqlite.py` is the embedded default
(one file in the data folder, no server); a shared store for a fleet implements the
same protocols and is handed to the relay instead.
"""
