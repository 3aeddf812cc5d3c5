"""Who holds a state lock, and the message that names them."""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


@dataclass(frozen=True)
class LockInfo:
    id: str
    operation: str
    who: str
    pid: int
    host: str
    created: str

    @classmethod
    def new(cls, operation: str) -> LockInfo:
        host = socket.gethostname()
        return cls(
            id=str(uuid.uuid4()),
            operation=operation,
            who=f"{_user()}@{host}",
            pid=os.getpid(),
            host=host,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> LockInfo | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                str(data["id"]),
                str(data.get("operation", "?")),
                str(data.get("who", "?")),
                int(data.get("pid", 0)),
                str(data.get("host", "?")),
                str(data.get("created", "?")),
            )
        except (KeyError, TypeError, ValueError):
            return None


def held_message(info: LockInfo | None, timeout: float) -> str:
    waited = f" after waiting {timeout:g}s" if timeout else ""
    if info is None:
        return f"the state is locked{waited} by another postform. Retry later."
    return (
        f"the state is locked{waited}: held by {info.who} (pid {info.pid}, "
        f"{info.operation}) since {info.created}; lock ID {info.id}. Retry later, or wait "
        "for it with --lock-timeout SECONDS. If that process hangs, "
        f"`postform force-unlock {info.id}` breaks the lock."
    )
