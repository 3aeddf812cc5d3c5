"""`apply --credentials-out FILE`: the new passwords, written before the state that holds
their hashes, so that a crash between the two loses no password (at worst the file
names a credential the state does not hold yet, which the next apply makes again)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from reconciler.apply import IssuedCredential
from relay.durable import atomic_write


def write_credentials_out(
    issued: list[IssuedCredential], path: Path | None, warn: Callable[[str], None]
) -> Path | None:
    """Write the passwords to `path` (0600, atomically); where they were written, or None
    (no file asked for, or it could not be written: then they are printed instead)."""
    if not issued or path is None:
        return None
    rows = [
        {
            "address": c.address,
            "user": c.user,
            "credential": c.name,
            "username": c.username,
            "password": c.password,
        }
        for c in issued
    ]
    try:
        atomic_write(path, (json.dumps(rows, indent=2) + "\n").encode(), mode=0o600)
    except OSError as exc:
        warn(
            f"Warning: could not write {path}: {exc.strerror or exc}; the new passwords "
            "are printed below instead, since they cannot be recovered later."
        )
        return None
    return path
