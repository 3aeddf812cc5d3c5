"""DNS health per domain for the relay's dashboard: the last `dns verify` of each domain's
SPF, DKIM and DMARC records, as the relay policy carries it (relays never read the
state). The worst result of a kind counts (one DKIM selector missing makes DKIM
"missing"); a record never checked is left out; the day of the newest check is kept, not
the time, so repeating a check does not republish the policy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.dns.records import DKIM, DMARC, SPF
from reconciler.dns.results import MISMATCH, MISSING, OK

_RANK = {OK: 0, MISMATCH: 1, MISSING: 2}
_KINDS = {SPF: "spf", DKIM: "dkim", DMARC: "dmarc"}
_OWNER = re.compile(r'^(?:domain|dkim)\["([^"/]+)')


def dns_health(verification: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    health: dict[str, dict[str, str]] = {}
    for key, entry in verification.items():
        kind = _KINDS.get(key.rpartition("/")[2])
        if kind is None or not isinstance(entry, Mapping) or entry.get("status") not in _RANK:
            continue
        match = _OWNER.match(str(entry.get("owner", "")))
        if match is None:
            continue
        checks = health.setdefault(match.group(1), {})
        status = str(entry["status"])
        if _RANK[status] >= _RANK.get(checks.get(kind, OK), 0):
            checks[kind] = status
        day = str(entry.get("checked_at", ""))[:10]
        checks["checked_on"] = max(checks.get("checked_on", ""), day)
    return dict(sorted(health.items()))
