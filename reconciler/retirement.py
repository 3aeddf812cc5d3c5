"""DKIM selectors leave in two phases, so mail already signed with them still verifies.

Removing a selector from the config does not pull its DNS record at once: messages
signed with it may still sit in a relay's queue or in transit, and a receiver that
cannot find the key fails their DKIM check. The first apply *retires* it: the
resource stays, with `retired_at` set, the relay policy no longer holds the key (it
stops signing at once) and its record stays published. A later apply removes the
record and the key, once the retention period (`dns.dkim_retention_days`, default 7)
has passed since `retired_at` and no message in this host's queue is signed with it.
Relays on other hosts are covered by the retention itself: a relay gives up on a
message after `relay.delivery.max_age` (3 days by default), and the retention may not
be shorter (a config check).

Declaring the selector again before it is removed brings it back (an update that
clears `retired_at`); its key never changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from reconciler.resources import Resource

DEFAULT_RETENTION_DAYS = 7
RETIRED_AT = "retired_at"


def clock() -> datetime:
    """Now, as the retirement rules read it (tests replace it: a fake clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Retirement:
    now: datetime
    retention: timedelta
    # "domain/selector" -> queued messages signed with it on this host; None: no queue here
    queued: Mapping[str, int] | None = None


def retire(
    desired: Mapping[str, Resource], stored: Mapping[str, Mapping[str, Any]], rules: Retirement
) -> tuple[dict[str, Resource], list[str]]:
    """`desired` plus the DKIM selectors the config dropped that must stay for now
    (retired by this apply, or still within their retention), and a note for each."""
    out = dict(desired)
    notes: list[str] = []
    for addr, res in stored.items():
        if res["type"] != "dkim" or addr in desired:
            continue
        attrs = dict(res["attributes"])
        since = attrs.get(RETIRED_AT)
        if not isinstance(since, str):
            attrs[RETIRED_AT] = rules.now.isoformat(timespec="seconds")
            out[addr] = Resource("dkim", res["name"], attrs)
            notes.append(_retiring(addr, rules))
            continue
        waiting = _waiting_for(str(res["name"]), since, rules)
        if waiting:
            out[addr] = Resource("dkim", res["name"], attrs)
            notes.append(
                f"{addr} is retired since {since}: it no longer signs; its DNS record "
                f"and key stay until {waiting}."
            )
        # else: left out of `desired`, so the plan deletes it (the second phase)
    return out, notes


def _retiring(addr: str, rules: Retirement) -> str:
    until = (rules.now + rules.retention).isoformat(timespec="seconds")
    return (
        f"{addr} is retired by this apply (it left the configuration): it stops signing at "
        f"once, and its DNS record stays published so mail already signed with it still "
        f"verifies. An apply after {until} (the retention of {_days(rules.retention)}), once "
        "no queued message is signed with it, removes the record and the key."
    )


def _waiting_for(name: str, since: str, rules: Retirement) -> str:
    """What the second phase still waits for ('' when nothing)."""
    reasons = []
    try:
        until = datetime.fromisoformat(since) + rules.retention
    except ValueError:
        until = rules.now  # a damaged timestamp does not keep a key forever
    if rules.now < until:
        reasons.append(f"{until.isoformat(timespec='seconds')} (retention)")
    queued = (rules.queued or {}).get(name, 0)
    if queued:
        reasons.append(f"the {queued} queued message(s) signed with it have left this relay")
    return " and ".join(reasons)


def _days(span: timedelta) -> str:
    days = span.total_seconds() / 86_400
    return f"{days:g} day{'s' if days != 1 else ''}"
