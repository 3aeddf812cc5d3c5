"""One relay per data folder: a second `serve`, or a second delivery worker (`relay
deliver` beside a `serve` that delivers), on the same spool would deliver twice."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from relay.contract.errors import UserError


class DataFolderBusy(UserError):
    """Another relay process holds this data folder."""


@contextlib.contextmanager
def data_lock(folder: Path, role: str) -> Iterator[None]:
    """Hold `<folder>/<role>.lock` (flock: released by the kernel if the process dies)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{role}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            raise DataFolderBusy(
                f"another postform relay ({role}, pid {holder}) is using {folder}; "
                "stop it first (or use --no-delivery on one of them)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)
