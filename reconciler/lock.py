"""An advisory lock beside the state file, held by every command that writes state.

The lock is a file created with O_EXCL that records who holds it. A crashed
holder leaves it behind; `postform force-unlock ID` removes it, as in Terraform.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import StateError, StateLockedError


def lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".lock")


@contextmanager
def state_lock(state_path: Path, operation: str, timeout: float = 0.0) -> Iterator[str]:
    """Hold the lock for `state_path`, waiting up to `timeout` seconds for it."""
    path = lock_path(state_path)
    info = {
        "id": str(uuid.uuid4()),
        "operation": operation,
        "who": f"{_user()}@{socket.gethostname()}",
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _acquire(path, info, timeout)
    try:
        yield info["id"]
    finally:
        if read_lock(path).get("id") == info["id"]:
            path.unlink(missing_ok=True)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _acquire(path: Path, info: dict[str, Any], timeout: float) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            if time.monotonic() >= deadline:
                raise StateLockedError(_held_message(path, timeout)) from None
            time.sleep(0.05)
            continue
        except OSError as exc:
            raise StateError(f"cannot create lock file {path}: {exc.strerror}") from None
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
        return


def read_lock(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _held_message(path: Path, timeout: float) -> str:
    info = read_lock(path)
    waited = f" after waiting {timeout:g}s" if timeout else ""
    msg = (
        f"the state is locked{waited}: held by {info.get('who', '?')} "
        f"(pid {info.get('pid', '?')}, {info.get('operation', '?')}) since "
        f"{info.get('created', '?')}; lock ID {info.get('id', '?')}."
    )
    if info.get("host") == socket.gethostname() and not _alive(info.get("pid")):
        msg += (
            f" That process is no longer running: if no other postform is working on this "
            f"state, run `postform force-unlock {info.get('id')}`."
        )
    else:
        msg += " Retry later, or wait for it with --lock-timeout SECONDS."
    return msg


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def force_unlock(state_path: Path, lock_id: str) -> None:
    path = lock_path(state_path)
    info = read_lock(path)
    if not path.exists():
        raise StateError(f"the state {state_path} is not locked")
    if info.get("id") != lock_id:
        raise StateError(
            f"lock ID {lock_id} does not match the lock on {state_path} "
            f"(held as {info.get('id', '?')} by {info.get('who', '?')})"
        )
    path.unlink()
