"""The plan: a closed set of actions, one frozen Change per resource that differs."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# How a value made at apply (a key, a password hash) shows before apply: in the plan's
# resource changes and in the DNS records it will publish.
UNKNOWN_TEXT = "(known after apply)"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One resource's change. `before`/`after` are declared attributes only;
    `computed_before` holds the non-secret computed values of the stored
    resource; `unknown_after` names computed values made at apply."""

    address: str
    type: str
    name: str | None
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    computed_before: dict[str, Any] | None = None
    unknown_after: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    forces: tuple[str, ...] = ()
    reason: str = ""

    def changed_attributes(self) -> list[str]:
        before, after = self.before or {}, self.after or {}
        return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@dataclass(frozen=True, slots=True)
class DnsChange:
    """A DNS record that must be published, changed or withdrawn after apply."""

    action: str  # add | change | remove
    name: str
    type: str
    purpose: str
    zone: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Plan:
    """Changes sorted once, in apply order, plus what the plan was made against."""

    changes: tuple[Change, ...]
    lineage: str | None
    serial: int
    warnings: tuple[str, ...] = ()
    runtime: dict[str, Any] = field(default_factory=dict)
    destroy: bool = False
    dns_changes: tuple[DnsChange, ...] = ()
    notes: tuple[str, ...] = ()
    drift: tuple[str, ...] = ()
    # Why the published relay policy will be written again although no resource changes
    # (missing, damaged, or not what the state says): None when it is as it should be.
    policy: str | None = None

    @property
    def add(self) -> int:
        return sum(c.action in (Action.CREATE, Action.REPLACE) for c in self.changes)

    @property
    def change(self) -> int:
        return sum(c.action is Action.UPDATE for c in self.changes)

    @property
    def remove(self) -> int:
        return sum(c.action in (Action.DELETE, Action.REPLACE) for c in self.changes)

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def has_work(self) -> bool:
        """Apply would change something: resources, or the published policy."""
        return bool(self.changes) or self.policy is not None
