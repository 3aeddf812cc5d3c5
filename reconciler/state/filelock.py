"""The local backend's lock: flock(2) on a file beside the state, with who holds it
written inside (as Terraform's filesystem lock). The kernel releases it when the
holder exits, however it exits, so a crash never leaves a stale lock.

A released lock file is removed; a waiter that locked a file that was removed or
replaced meanwhile notices (the inode at the path differs) and tries again, so
two processes never both believe they hold it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.errors import StateError, StateLockedError
from reconciler.state.lockinfo import LockInfo, held_message
from relay.durable import write_all

POLL_SECONDS = 0.05


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def hold(self, operation: str, timeout: float) -> Iterator[LockInfo]:
        info = LockInfo.new(operation)
        fd = self._acquire(timeout)
        try:
            os.ftruncate(fd, 0)
            write_all(fd, json.dumps(info.to_dict()).encode())
            yield info
        finally:
            if self._is_ours(fd):
                self.path.unlink(missing_ok=True)
            os.close(fd)  # releases the flock

    def _acquire(self, timeout: float) -> int:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StateError(f"cannot open lock file {self.path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise StateLockedError(held_message(self.holder(), timeout)) from None
                time.sleep(POLL_SECONDS)
                continue
            if self._is_ours(fd):
                return fd
            os.close(fd)  # locked a file that was removed or replaced meanwhile

    def _is_ours(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def holder(self) -> LockInfo | None:
        """Who holds the lock, as written in the lock file (None when unknown)."""
        try:
            return LockInfo.from_dict(json.loads(self.path.read_text()))
        except (OSError, ValueError):
            return None

    def held(self) -> bool:
        """Whether a live process holds the lock now."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def force_unlock(self, lock_id: str) -> bool:
        """Break the lock `lock_id`; returns whether its holder was still running (it keeps
        running, but no longer excludes anyone)."""
        if not self.path.exists():
            raise StateError(f"the state is not locked (no {self.path})")
        info = self.holder()
        if info is None or info.id != lock_id:
            held_by = f"{info.id} by {info.who}" if info else "an unknown holder"
            raise StateError(f"lock ID {lock_id} does not match the lock {self.path} ({held_by})")
        running = self.held()
        self.path.unlink(missing_ok=True)
        return running
