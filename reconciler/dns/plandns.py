"""What a plan means for DNS: record changes, activation notes, drift. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.dns.lifecycle import drift, foreign_seen, spf_limit_warnings
from reconciler.dns.records import DKIM, RECORD_SOURCES, Record, records_for
from reconciler.plan import Action, Change, DnsChange
from reconciler.state.model import State


def after_resources(
    changes: tuple[Change, ...], stored: Mapping[str, Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The resources DNS records come from (relay, domains, DKIM), as they will be after
    the changes; computed values not made yet are absent."""
    out: dict[str, Mapping[str, Any]] = {
        addr: res for addr, res in stored.items() if res["type"] in RECORD_SOURCES
    }
    for c in changes:
        if c.type not in RECORD_SOURCES:
            continue
        if c.action is Action.DELETE:
            out.pop(c.address, None)
            continue
        computed = stored[c.address]["computed"] if c.action is Action.UPDATE else {}
        out[c.address] = {
            "type": c.type,
            "name": c.name,
            "attributes": c.after or {},
            "computed": computed,
        }
    return list(out.values())


def dns_changes(before: list[Record], after: list[Record]) -> tuple[DnsChange, ...]:
    old = {r.key: r for r in before}
    new = {r.key: r for r in after}
    out = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None and a.value == b.value:
            continue
        action = "add" if a is None else "remove" if b is None else "change"
        ref = b or a
        assert ref is not None
        out.append(
            DnsChange(
                action,
                ref.name,
                ref.type,
                ref.purpose,
                ref.zone,
                a.value if a else None,
                b.value if b else None,
            )
        )
    return tuple(out)


def activation_notes(changes: tuple[Change, ...]) -> tuple[str, ...]:
    notes = []
    for c in changes:
        if c.type != "dkim" or c.action not in (Action.CREATE, Action.REPLACE):
            continue
        if (c.after or {}).get("activation") == "immediate":
            notes.append(
                f"{c.address} will be ACTIVE at apply (activation: immediate): the "
                "relay signs with it before its DNS record is verified."
            )
        else:
            notes.append(
                f"{c.address} will be NEEDS_ATTENTION until its DNS record is published "
                "and seen live by `postform dns verify`; only then does the relay sign "
                "with it."
            )
    return tuple(notes)


def import_notes(changes: tuple[Change, ...], state: State, after: list[Record]) -> tuple[str, ...]:
    """For a selector this plan creates whose name already holds a DKIM key postform did
    not make (as the last `dns verify` or `refresh` saw it): adopt it with import."""
    creating = {c.address for c in changes if c.type == "dkim" and c.action is Action.CREATE}
    notes = []
    for record in after:
        if record.purpose != DKIM or record.owner not in creating:
            continue
        seen = foreign_seen(state, record.key)
        if seen is None:
            continue
        notes.append(
            f"{record.name} already publishes a DKIM key postform did not make (seen by "
            f"`postform dns verify` at {seen.get('checked_at')}). Apply would make a new key "
            f"for {record.owner}, and `dns push` refuses to overwrite the published one "
            f"without --force. If that key is yours (another provider's), adopt it instead: "
            f"postform import '{record.owner}' --private-key-file KEY.pem"
        )
    return tuple(notes)


@dataclass(frozen=True)
class DnsView:
    changes: tuple[DnsChange, ...]
    notes: tuple[str, ...]
    drift: tuple[str, ...]
    warnings: tuple[str, ...]  # from the last live check: what `dns push` will refuse


def dns_view(changes: tuple[Change, ...], state: State, ttl: int) -> DnsView:
    before = records_for(state.resources.values(), ttl)
    after = records_for(after_resources(changes, state.resources), ttl)
    return DnsView(
        dns_changes(before, after),
        (*import_notes(changes, state, after), *activation_notes(changes)),
        tuple(drift(state, before)),
        tuple(spf_limit_warnings(state, before)),
    )
