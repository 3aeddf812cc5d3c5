"""DKIM selector lifecycle and verification history, recorded in the state.

NEEDS_ATTENTION -> ACTIVE when a selector's record is seen live with the
applied key; ACTIVE -> NEEDS_ATTENTION when a verified record disappears or
changes (signing with a key receivers cannot find only fails DKIM). Selectors
with `activation: immediate` stay ACTIVE. Every result is kept under
state.dns["verification"], so `plan` can report drift without querying DNS.

A check also looks at the names of declared selectors not applied yet: a DKIM key
published there was made elsewhere (another provider's), and is kept as a FOREIGN
observation, so `plan` can say `postform import` adopts it rather than apply making a
key `dns push` would have to overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from reconciler.dns import spf
from reconciler.dns.records import DKIM, Record
from reconciler.dns.results import OK, Result
from reconciler.policy import DKIM_STATUS, effective_status
from reconciler.state.model import Resources, State
from relay.contract.dkim import DkimStatus

FOREIGN = "foreign"  # a DKIM key postform did not make, at a selector not applied yet
SEEN_OK = "seen_ok"  # the last records verified live at a key: postform's, as published


@dataclass(frozen=True)
class StatusChange:
    address: str
    before: str
    after: str


def record_results(state: State, results: list[Result]) -> tuple[State, list[StatusChange]]:
    """A new State with `results` recorded and DKIM statuses moved (observations both: the
    applied resources do not change); and what moved."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    statuses = dict(state.dns.get(DKIM_STATUS, {}))
    history = dict(state.dns.get("verification", {}))
    changes: list[StatusChange] = []
    for result in results:
        record = result.record
        entry = dict(history.get(record.key, {}))
        if entry.get("value") != record.value:
            # A new key or value: its history starts again, but what was seen live as
            # postform's record stays postform's (dns push replaces it without --force).
            entry = {k: v for k, v in entry.items() if k == SEEN_OK}
        entry.update(
            status=result.status,
            checked_at=now,
            owner=record.owner,
            detail=result.detail,
            value=record.value,
        )
        if result.status == OK:
            entry["verified_at"] = now
            if result.found:
                kept = [v for v in entry.get(SEEN_OK, []) if v != result.found[0]]
                entry[SEEN_OK] = [*kept, result.found[0]][-3:]
        for key, seen in (("merged_lookups", result.merged_lookups), ("txt_set", result.txt_set)):
            if seen is None:
                entry.pop(key, None)
            else:
                entry[key] = list(seen) if isinstance(seen, tuple) else seen
        history[record.key] = entry
        if record.purpose == DKIM:
            change = _move(state.resources, statuses, record.owner, result.status == OK)
            if change:
                changes.append(change)
    dns = {**state.dns, "verification": history, DKIM_STATUS: statuses}
    return replace(state, dns=dns), changes


def _move(
    resources: Resources, statuses: dict[str, Any], address: str, live: bool
) -> StatusChange | None:
    res = resources.get(address)
    if res is None:
        return None
    before = effective_status(address, res, statuses)
    immediate = res["attributes"].get("activation") == "immediate"
    after = DkimStatus.ACTIVE if live or immediate else DkimStatus.NEEDS_ATTENTION
    if after == before:
        return None
    statuses[address] = {"status": str(after), "created_at": res["computed"].get("created_at")}
    return StatusChange(address, str(before), str(after))


def record_foreign(state: State, seen: dict[str, tuple[str, list[str]]]) -> State:
    """`seen`: record key -> (selector address, DKIM records found at its name) for the
    declared selectors not applied yet that were looked at; an empty list clears what an
    earlier check found."""
    if not seen:
        return state
    now = datetime.now(UTC).isoformat(timespec="seconds")
    history = dict(state.dns.get("verification", {}))
    for key, (owner, found) in seen.items():
        if found:
            history[key] = {
                "status": FOREIGN,
                "checked_at": now,
                "owner": owner,
                "found": list(found),
                "detail": "a DKIM key postform did not make (another provider's?)",
            }
        elif history.get(key, {}).get("status") == FOREIGN:
            del history[key]
    return replace(state, dns={**state.dns, "verification": history})


def foreign_seen(state: State, key: str) -> dict[str, Any] | None:
    """The last check's FOREIGN observation at a record key, if any."""
    entry = state.dns.get("verification", {}).get(key)
    if isinstance(entry, dict) and entry.get("status") == FOREIGN and entry.get("found"):
        return entry
    return None


def spf_limit_warnings(state: State, records: list[Record]) -> list[str]:
    """SPF records the last check found at names postform merges into that would cost
    more than RFC 7208's 10 DNS lookups with postform's include: `dns push` refuses them,
    so say it before (in plan and `dns records`)."""
    current = {r.key: r.value for r in records}
    out = []
    for key, entry in sorted(state.dns.get("verification", {}).items()):
        lookups = entry.get("merged_lookups")
        if current.get(key) != entry.get("value") or not isinstance(lookups, int):
            continue
        if lookups > spf.LOOKUP_LIMIT:
            out.append(
                f"the SPF record published at {key.split('/')[0]} would need {lookups} DNS "
                f"lookups with postform's include merged (found by the check at "
                f"{entry.get('checked_at')}), more than the {spf.LOOKUP_LIMIT} RFC 7208 "
                "allows: `dns push` refuses that merge. Flatten or remove an include there."
            )
    return out


def drift(state: State, records: list[Record]) -> list[str]:
    """Records once verified live that the last check found missing or changed."""
    current = {r.key: r.value for r in records}
    out = []
    for key, entry in sorted(state.dns.get("verification", {}).items()):
        if current.get(key) != entry.get("value"):
            continue
        if entry.get("verified_at") and entry.get("status") != OK:
            out.append(
                f"{key.split('/')[0]} {key.split('/')[1]} ({entry.get('owner')}) was "
                f"verified at {entry['verified_at']} but is {entry['status']} since "
                f"{entry['checked_at']}: {entry.get('detail', '')}"
            )
    return out
