"""Refuse plans that destroy too much, with the numbers and the remedy. `plan` shows the
refusal (`assess`), `apply` enforces it (`raise_if_refused`): one check, the same inputs."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.errors import UnsafePlanError
from reconciler.plan import Action, Change, Plan
from reconciler.policy import effective_status
from reconciler.retirement import RETIRED_AT
from relay.contract.dkim import DkimStatus

DESTROY_THRESHOLD = 0.30
MIN_EXISTING = 10


def unsafe_reasons(
    plan: Plan,
    stored: Mapping[str, Mapping[str, Any]],
    observed: Mapping[str, Any] | None = None,
) -> list[str]:
    hit = Counter(c.type for c in plan.changes if c.action in (Action.DELETE, Action.REPLACE))
    existing = Counter(res["type"] for res in stored.values()) if hit else Counter()
    reasons = []
    for rtype in sorted(hit):
        count, total = hit[rtype], existing[rtype]
        if total >= MIN_EXISTING and count / total > DESTROY_THRESHOLD:
            reasons.append(
                f"destroys or replaces {count} of {total} {rtype} resources "
                f"({100 * count / total:.0f} % > {DESTROY_THRESHOLD:.0%})"
            )
    reasons.extend(_signing_domains_lost(plan, stored))
    reasons.extend(_active_selectors_lost(plan, stored, observed or {}))
    return reasons


def _signing_domains_lost(plan: Plan, stored: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """A destroyed domain whose DKIM keys still sign mail for senders the plan keeps."""
    doomed = _destroyed_domains(plan)
    if not doomed:
        return []
    signed = {r["attributes"]["domain"] for r in stored.values() if r["type"] == "dkim"}
    senders = _senders_after(plan, stored)
    return [
        f"destroys domain {d} and its DKIM keys while {senders[d]} approved sender(s) at it "
        "remain: their mail would go out unsigned"
        for d in sorted(doomed & signed)
        if senders[d]
    ]


def _destroyed_domains(plan: Plan) -> set[str]:
    return {
        c.name
        for c in plan.changes
        if c.type == "domain" and c.action is Action.DELETE and c.name is not None
    }


def _senders_after(plan: Plan, stored: Mapping[str, Mapping[str, Any]]) -> Counter[str]:
    """Approved senders per domain once the plan is applied."""
    gone = {c.address for c in plan.changes if c.action is Action.DELETE}
    senders: Counter[str] = Counter(
        str(r["attributes"].get("domain"))
        for a, r in stored.items()
        if r["type"] == "sender" and a not in gone
    )
    senders.update(
        str(c.after.get("domain"))
        for c in plan.changes
        if c.type == "sender" and c.action is Action.CREATE and c.after
    )
    return senders


def _active_selectors_lost(
    plan: Plan, stored: Mapping[str, Mapping[str, Any]], observed: Mapping[str, Any]
) -> list[str]:
    """A domain left with no ACTIVE selector while senders remain: its mail goes unsigned
    until a new selector's record is verified."""
    hit = {c.address: c for c in plan.changes if c.type == "dkim"}
    if not hit:
        return []  # only a DKIM change takes a domain's last ACTIVE selector away
    active: dict[str, list[str]] = {}
    for addr, res in stored.items():
        if res["type"] == "dkim" and effective_status(addr, res, observed) is DkimStatus.ACTIVE:
            active.setdefault(res["attributes"]["domain"], []).append(addr)
    for c in hit.values():
        after = c.after or {}
        if c.action in (Action.CREATE, Action.REPLACE) and after.get("activation") == "immediate":
            active.setdefault(after["domain"], []).append(c.address + "#new")
    doomed = _destroyed_domains(plan)
    lost_all = []
    for domain, addrs in active.items():
        if domain in doomed:
            continue  # reported by _signing_domains_lost
        keep = [a for a in addrs if a.endswith("#new") or a not in hit or _still_signs(hit[a])]
        if not keep:
            lost_all.append(domain)
    if not lost_all:
        return []
    senders = _senders_after(plan, stored)
    return [
        f"removes every ACTIVE DKIM selector of {d} while {senders[d]} approved sender(s) "
        "at it remain: their mail goes out unsigned until a new selector is verified"
        for d in sorted(lost_all)
        if senders[d]
    ]


def assess(
    plan: Plan,
    stored: Mapping[str, Mapping[str, Any]],
    observed: Mapping[str, Any] | None = None,
    *,
    allow_destructive: bool = False,
) -> Plan:
    """The plan with why `apply` refuses it: what `plan` shows and `apply` enforces, from
    the same inputs. A destroy plan (`postform destroy`, `plan --destroy`) is not checked:
    destroying everything is what it is for, and it is never made by editing the config."""
    reasons = () if plan.destroy else tuple(unsafe_reasons(plan, stored, observed))
    return dataclasses.replace(plan, refusals=reasons, allow_destructive=allow_destructive)


def refusal_message(reasons: Sequence[str]) -> str:
    return (
        "refusing to apply: the plan "
        + "; it ".join(reasons)
        + ". Rerun with --allow-destructive if this is intended."
    )


def raise_if_refused(plan: Plan) -> None:
    """Apply's check, on a plan `assess` saw."""
    if plan.refused:
        raise UnsafePlanError(refusal_message(plan.refusals))


def _still_signs(change: Change) -> bool:
    """An update keeps a selector signing, unless it retires it (reconciler/retirement.py)."""
    return change.action is Action.UPDATE and not (change.after or {}).get(RETIRED_AT)


def raise_if_unsafe(
    plan: Plan,
    stored: Mapping[str, Mapping[str, Any]],
    observed: Mapping[str, Any] | None = None,
) -> None:
    reasons = unsafe_reasons(plan, stored, observed)
    if reasons:
        raise UnsafePlanError(refusal_message(reasons))
