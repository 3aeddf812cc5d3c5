"""Loading a large config or state without the cyclic collector re-scanning it.

At 100,000 senders the YAML config and the state decode into about 1.5 million
objects, none of them in a reference cycle. While they are built, CPython's
collector runs full passes over the growing heap: a third of a plan's time. A
command pauses it while loading and then freezes what it loaded: the data stays
alive for the whole command anyway, reference counting still frees it, and the
collector no longer walks it on every later pass.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off, then move what exists to the
    permanent generation (gc.freeze) and turn the collector back on if it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
