"""The applied state: resources as apply left them, plus DNS facts that are not resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Resources = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class State:
    """`serial` counts writes and `lineage` names the state's history (fixed when it is
    first written); a State read from a backend carries the serial it was read at, which
    is what a write checks against."""

    lineage: str | None = None
    serial: int = 0
    resources: Resources = field(default_factory=dict)
    # DNS facts that are not resources: verification results and what push published.
    dns: dict[str, Any] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.lineage is not None


@dataclass(frozen=True)
class StateVersion:
    """One stored version, for `postform state history`."""

    serial: int
    lineage: str
    updated_at: str
    where: str
