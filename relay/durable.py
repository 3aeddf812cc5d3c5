"""Durable file writes, shared by both planes: a file is either wholly old or wholly
new, and a rename is on disk before the caller goes on."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_all(fd: int, payload: bytes) -> None:
    """os.write until every byte is written (a short write must not truncate a file)."""
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(path: Path | str) -> None:
    """Make the folder's entries (a rename, an unlink) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, payload: bytes, mode: int = 0o600, sync_dir: bool = True) -> None:
    """Write `payload` to `path` via a fsync'ed temporary file, a rename and a sync of the
    folder. The temporary file gets `mode` from the start, so secrets never sit readable.
    With sync_dir=False the caller syncs the folder once after several writes."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            write_all(fd, payload)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


# What identifies one version of a file written by atomic_write: every write renames a
# new inode into place.
Stamp = tuple[int, int, int]


def file_stamp(path: Path) -> Stamp | None:
    """(inode, mtime, size) of `path`, or None when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
