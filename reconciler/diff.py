"""diff(desired, stored) -> Plan: pure, no I/O, deterministic order."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from operator import attrgetter
from typing import Any

from reconciler.plan import Action, Change, Plan
from reconciler.resources import (
    COMPUTED,
    FORCES_REPLACEMENT,
    MADE_AT_APPLY,
    SENSITIVE,
    TYPE_RANK,
    Resource,
)

StoredResource = Mapping[str, Any]


def diff(
    desired: Mapping[str, Resource],
    stored: Mapping[str, StoredResource],
    *,
    lineage: str | None = None,
    serial: int = 0,
    replace: Collection[str] = (),
    warnings: tuple[str, ...] = (),
) -> Plan:
    """The changes that make `stored` match `desired`, in apply order.

    Creates, updates and replacements come in dependency order (a domain
    before its DKIM selectors); deletions follow in reverse dependency order.
    `replace` names addresses to replace even when unchanged (key rotation).
    """
    forward: list[Change] = []
    for addr, res in desired.items():
        old = stored.get(addr)
        if old is None:
            forward.append(_create(addr, res))
        elif old["attributes"] != res.attributes or addr in replace:
            forward.append(_modify(res, old, addr in replace))
    backward = [_delete(addr, old) for addr, old in stored.items() if addr not in desired]
    # Two stable sorts on C key functions: (rank, address) tuples for 100,000 creates
    # cost more than the sorts themselves.
    for changes, reverse in ((forward, False), (backward, True)):
        changes.sort(key=_ADDRESS)
        changes.sort(key=_rank, reverse=reverse)
    return Plan(tuple(forward + backward), lineage, serial, warnings)


_ADDRESS = attrgetter("address")


def _rank(change: Change) -> int:
    return TYPE_RANK[change.type]


def _visible(rtype: str, computed: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        k: v
        for k, v in (computed or {}).items()
        if k not in SENSITIVE and k in COMPUTED.get(rtype, ())
    }


_SENSITIVE_BY_TYPE = {t: tuple(k for k in keys if k in SENSITIVE) for t, keys in COMPUTED.items()}


def _sensitive(rtype: str) -> tuple[str, ...]:
    return _SENSITIVE_BY_TYPE.get(rtype, ())


def _create(addr: str, res: Resource) -> Change:
    rtype = res.type
    return Change(
        addr,
        rtype,
        res.name,
        Action.CREATE,
        None,
        dict(res.attributes),
        None,
        MADE_AT_APPLY.get(rtype, ()),
        _SENSITIVE_BY_TYPE.get(rtype, ()),
    )


def _modify(res: Resource, old: StoredResource, requested: bool) -> Change:
    before = dict(old["attributes"])
    changed = {
        k for k in before.keys() | res.attributes.keys() if before.get(k) != res.attributes.get(k)
    }
    forces = tuple(sorted(changed & FORCES_REPLACEMENT.get(res.type, frozenset())))
    if forces or requested:
        reason = (
            ("forces replacement: " + ", ".join(forces))
            if forces
            else ("replacement requested with --replace")
        )
        return Change(
            res.address,
            res.type,
            res.name,
            Action.REPLACE,
            before,
            dict(res.attributes),
            _visible(res.type, old.get("computed")),
            MADE_AT_APPLY.get(res.type, ()),
            _sensitive(res.type),
            forces,
            reason,
        )
    return Change(
        res.address,
        res.type,
        res.name,
        Action.UPDATE,
        before,
        dict(res.attributes),
        _visible(res.type, old.get("computed")),
        sensitive=_sensitive(res.type),
    )


def _delete(addr: str, old: StoredResource) -> Change:
    rtype = old["type"]
    return Change(
        addr,
        rtype,
        old.get("name"),
        Action.DELETE,
        dict(old["attributes"]),
        None,
        _visible(rtype, old.get("computed")),
        sensitive=_sensitive(rtype),
        reason="not in the configuration",
    )
