"""The plan: a closed set of actions, one Change per resource that differs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

# How a value made at apply (a key, a password hash) shows before apply: in the plan's
# resource changes and in the DNS records it will publish.
UNKNOWN_TEXT = "(known after apply)"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"


@dataclass(slots=True)
class Change:
    """One resource's change. `before`/`after` are declared attributes only;
    `computed_before` holds the non-secret computed values of the stored
    resource; `unknown_after` names computed values made at apply.

    Never changed once made, but not a frozen dataclass: a frozen one sets each of its
    eleven fields through object.__setattr__, 0.14 s of a plan that creates 100,000."""

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
    # Why `apply` refuses this plan (reconciler/safety.py), as plan and apply both find it;
    # `allow_destructive`: made with --allow-destructive, the refusals shown as overridden.
    refusals: tuple[str, ...] = ()
    allow_destructive: bool = False
    # The zones holding the drifted records: publishing them there again fixes the drift.
    drift_zones: tuple[str, ...] = ()

    @cached_property
    def _actions(self) -> Counter[Action]:
        """How many changes of each action: counted once, not on each of the summary's
        three reads of 100,000 changes."""
        return Counter(c.action for c in self.changes)

    @property
    def add(self) -> int:
        return self._actions[Action.CREATE] + self._actions[Action.REPLACE]

    @property
    def change(self) -> int:
        return self._actions[Action.UPDATE]

    @property
    def remove(self) -> int:
        return self._actions[Action.DELETE] + self._actions[Action.REPLACE]

    @property
    def empty(self) -> bool:
        return not self.changes

    @property
    def refused(self) -> bool:
        """`apply` refuses this plan: the safety check found reasons, not overridden."""
        return bool(self.refusals) and not self.allow_destructive

    @property
    def has_work(self) -> bool:
        """Apply would change something: resources, or the published policy."""
        return bool(self.changes) or self.policy is not None
