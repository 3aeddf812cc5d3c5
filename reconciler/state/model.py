"""The applied state: resources as apply left them, plus observations (DNS facts that are
not resources: verification results, DKIM status moves, what push published).

Two counters: `serial` counts applied changes to the resources, `revision` counts
observations recorded since. A saved plan depends on the serial only, so a scheduled
`refresh` never makes it stale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Resources = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class State:
    """`lineage` names the state's history (fixed when it is first written); a State read
    from a backend carries the serial and revision it was read at, which is what a write
    checks against."""

    lineage: str | None = None
    serial: int = 0
    resources: Resources = field(default_factory=dict)
    # Observations: verification results, DKIM status moves, what push published.
    dns: dict[str, Any] = field(default_factory=dict)
    revision: int = 0
    # How the secrets in `resources` are sealed (relay/contract/sealing.py), or None when
    # they are stored in the clear. Secrets stay sealed in memory: only relays open them.
    sealing: dict[str, Any] | None = None

    @property
    def exists(self) -> bool:
        return self.lineage is not None


@dataclass(frozen=True)
class StateVersion:
    """One stored version, for `postform state history`."""

    serial: int
    revision: int
    lineage: str
    updated_at: str
    where: str  # the file, or who wrote it (postgres)
