"""Giving big messages' memory back to the system.

glibc serves large blocks with mmap (returned on free) only up to a threshold that it
raises to the size of the largest block freed, so after a few 2 MB messages every
later one comes from the heap, which the process keeps: ten concurrent 2 MB messages
left the relay ~110 MB larger for good. Fixing the threshold turns that dynamic
adjustment off. It is fixed at 1 MiB, not glibc's initial 128 KiB: asyncio reads
sockets into 256 KiB buffers, and mapping one per read cost ~10 % of the relay's
throughput (bench/relay_throughput.py). Elsewhere (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt(3)
THRESHOLD = 1024 * 1024


def release_big_blocks() -> bool:
    """True when glibc took the setting."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD))
