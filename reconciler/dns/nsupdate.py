"""Records -> an nsupdate(1) script that converges a zone, as `dns push` does.

Names postform owns alone (DKIM, DMARC, the relay's SPF, the return path) get a
delete of their whole TXT or MX set before the add, so a changed value replaces
the old one instead of standing beside it (two v=spf1 records are a permerror
at every receiver). The SPF record at a sending domain is the user's: the
script merges postform's include into the record the last `postform dns verify`
found there, guarded by a prerequisite on that very record, in an update of its
own (if the record changed since, nsupdate refuses that update alone and the
rest still applies). What cannot be guarded is printed for merging by hand;
the script never adds a second SPF record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.dns import spf
from reconciler.dns.formats import by_zone, rdata_text
from reconciler.dns.records import DKIM, DMARC, RELAY_SPF, RP_MX, RP_SPF, SPF, Record

OWNED = (DKIM, DMARC, RELAY_SPF, RP_MX, RP_SPF)


def render_nsupdate(records: Iterable[Record], seen: Mapping[str, Any] | None = None) -> str:
    """The script; `seen` is the state's verification history (what was found live)."""
    blocks = []
    for zone, rows in by_zone(records).items():
        owned = [r for r in rows if r.purpose in OWNED]
        shared = [r for r in rows if r.purpose == SPF]
        if owned:
            lines = [f"zone {zone}."]
            for r in owned:
                lines.append(f"update delete {r.name}. {r.type}")
                lines.append(f"update add {r.name}. {r.ttl} {r.type} {rdata_text(r)}")
            blocks.append("\n".join([*lines, "send"]))
        blocks += [_shared_spf(zone, r, (seen or {}).get(r.key)) for r in shared]
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _shared_spf(zone: str, record: Record, entry: Any) -> str:
    include = record.value.split()[1]
    txt_set = entry.get("txt_set") if isinstance(entry, dict) else None
    name = f"{record.name}."
    if not (isinstance(txt_set, list) and len(txt_set) == 2 and isinstance(txt_set[0], list)):
        return _by_hand(record, include, "it has not been checked live yet")
    texts, ttl = [str(t) for t in txt_set[0]], int(txt_set[1])
    found = spf.spf_records(texts)
    when = f"as `postform dns verify` found it at {entry.get('checked_at')}"
    if not texts:
        return "\n".join(
            [
                f"; {record.name}: no TXT record there ({when}): add postform's SPF record",
                f"zone {zone}.",
                f"prereq nxrrset {name} TXT",
                f"update add {name} {record.ttl} TXT {rdata_text(record)}",
                "send",
            ]
        )
    if len(found) != 1:
        why = "it has no SPF record beside other TXT" if not found else "it has several"
        return _by_hand(record, include, f"{why} ({when})")
    if include in found[0].split():
        return f"; {record.name}: its SPF record already includes {include} ({when})"
    merged = spf.merge_include(found[0], include)
    return "\n".join(
        [
            f"; {record.name}: merge {include} into the SPF record there ({when}); nsupdate",
            "; refuses this update alone if the name's TXT records changed since",
            f"zone {zone}.",
            # A value-dependent prerequisite compares the whole set (RFC 2136 3.2.3).
            *(f"prereq yxrrset {name} TXT {_quoted(record, text)}" for text in texts),
            f"update delete {name} TXT {_quoted(record, found[0])}",
            f"update add {name} {ttl} TXT {_quoted(record, merged)}",
            "send",
        ]
    )


def _quoted(record: Record, value: str) -> str:
    return rdata_text(Record(record.zone, record.name, "TXT", record.purpose, value, 0, ""))


def _by_hand(record: Record, include: str, why: str) -> str:
    return (
        f"; {record.name}: merge by hand ({why}): add {include} to the v=spf1 record "
        f"there, before its `all` term; if there is none, publish {rdata_text(record)}"
    )
