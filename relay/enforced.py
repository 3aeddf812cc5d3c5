"""Which policy a relay enforces, recorded in its data folder for `relay status` (and the
operator): serial, revision, when it was published, when this relay loaded it."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from relay.contract.policy import RelayPolicy
from relay.durable import atomic_write

ENFORCED_FILE = "policy.enforced.json"


@dataclass(frozen=True)
class Enforced:
    serial: int
    revision: int
    lineage: str
    published_at: str
    loaded_at: str
    source: str

    def age(self, now: float | None = None) -> float | None:
        """Seconds since the policy was published (None when unknown)."""
        return policy_age(self.published_at, now)


def policy_age(published_at: str, now: float | None = None) -> float | None:
    if not published_at:
        return None
    try:
        published = datetime.fromisoformat(published_at).timestamp()
    except ValueError:
        return None
    return max(0.0, (time.time() if now is None else now) - published)


def record(folder: Path, policy: RelayPolicy, source: str) -> None:
    loaded = datetime.now(UTC).isoformat(timespec="seconds")
    entry = Enforced(
        policy.serial, policy.revision, policy.lineage, policy.published_at, loaded, source
    )
    atomic_write(folder / ENFORCED_FILE, json.dumps(asdict(entry)).encode(), mode=0o600)


def record_quietly(folder: Path, policy: RelayPolicy, source: str) -> None:
    """`record`, where a failure to write only costs `relay status` its answer."""
    with contextlib.suppress(OSError):
        record(folder, policy, source)


def read(folder: Path) -> Enforced | None:
    try:
        return Enforced(**json.loads((folder / ENFORCED_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
