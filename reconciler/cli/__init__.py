"""The `postform` command line, grouped by plane.

`app.py` is the root: it maps every expected failure to a message and an exit status
in one place and loads command groups only when they run (pip's lazy commands). The
control plane's commands live here (`plan.py`, `state.py`, `dns.py`); the relay's
live with the relay (relay/cli/), which gets its site from `site.py`.
"""

from reconciler.cli.app import main, run

__all__ = ["main", "run"]
