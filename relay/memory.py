"""Giving big messages' memory back to the system.

glibc serves large blocks with mmap (returned on free) only up to a threshold that it
raises to the size of the largest block freed, so after a few 2 MB messages every
later one comes from the heap, which the process keeps: ten concurrent 2 MB messages
left the relay ~110 MB larger for good. Fixing the threshold at glibc's default
(128 KiB) turns that dynamic adjustment off. Elsewhere (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3  # mallopt(3)
THRESHOLD = 128 * 1024


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
