"""Where the control plane keeps what it applied: the State, behind a StateBackend.

`model.py` is the State itself, `backend.py` the interface every backend
implements (read, compare-and-swap write, lock, history, policy publishing),
`local.py` the local-file backend, `open.py` picks one from the config.
"""
