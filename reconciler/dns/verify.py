"""Check the applied records against live DNS: ok, missing or mismatch, per record."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping
from typing import Any

from reconciler.dns import spf
from reconciler.dns.lookup import Resolver
from reconciler.dns.records import DKIM, DMARC, RELAY_SPF, RP_MX, RP_SPF, SPF, Record
from reconciler.dns.results import MISMATCH, MISSING, OK, Result


def tags(text: str) -> dict[str, str]:
    """A DKIM or DMARC tag list: 'v=DKIM1; k=rsa; p=...' -> {'v': 'DKIM1', ...}."""
    out = {}
    for part in text.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            out[key.strip().lower()] = "".join(value.split())
    return out


def verify(records: list[Record], resolver: Resolver, relay: Mapping[str, Any]) -> list[Result]:
    """One Result per record. DnsError (an unusable answer) propagates."""
    checks = {SPF: _spf, RELAY_SPF: _spf, RP_SPF: _spf, DKIM: _dkim, DMARC: _dmarc, RP_MX: _mx}
    return [checks[r.purpose](r, resolver, relay) for r in records]


def _dkim(record: Record, resolver: Resolver, relay: Mapping[str, Any]) -> Result:
    found = [t for t in resolver.txt(record.name) if "p=" in t]
    if not found:
        return Result(record, MISSING, "no DKIM key record")
    if len(found) > 1:
        return Result(
            record, MISMATCH, f"{len(found)} DKIM records; receivers need one", tuple(found)
        )
    want, got = tags(record.value), tags(found[0])
    if key_bytes(got.get("p", "")) != key_bytes(want["p"]):
        return Result(
            record, MISMATCH, "published public key differs from the applied key", tuple(found)
        )
    if got.get("k", "rsa") != want["k"]:
        return Result(
            record,
            MISMATCH,
            f"key type k={got.get('k', 'rsa')}, expected k={want['k']}",
            tuple(found),
        )
    return Result(record, OK, found=tuple(found))


def key_bytes(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True) or None
    except (binascii.Error, ValueError):
        return None


def _dmarc(record: Record, resolver: Resolver, relay: Mapping[str, Any]) -> Result:
    found = [
        t for t in resolver.txt(record.name) if t.replace(" ", "").lower().startswith("v=dmarc1")
    ]
    if not found:
        return Result(record, MISSING, "no DMARC record")
    if len(found) > 1:
        return Result(
            record, MISMATCH, f"{len(found)} DMARC records; receivers ignore all", tuple(found)
        )
    got, want = tags(found[0]), tags(record.value)
    if got.get("p") not in ("none", "quarantine", "reject"):
        return Result(record, MISMATCH, "not parseable: p= missing or invalid", tuple(found))
    differing = sorted(k for k in want if k != "v" and got.get(k) != want[k])
    if differing:
        return Result(record, MISMATCH, f"differs in {', '.join(differing)}", tuple(found))
    return Result(record, OK, found=tuple(found))


def _mx(record: Record, resolver: Resolver, relay: Mapping[str, Any]) -> Result:
    found = resolver.query(record.name, "MX")
    if not found:
        return Result(record, MISSING, "no MX record")
    host = record.value.split()[1].lower()
    if not any(mx.split()[-1].lower() == host for mx in found):
        return Result(record, MISMATCH, f"no MX points to {host}", tuple(found))
    return Result(record, OK, found=tuple(found))


def _spf(record: Record, resolver: Resolver, relay: Mapping[str, Any]) -> Result:
    found = spf.spf_records(resolver.txt(record.name))
    if not found:
        return Result(record, MISSING, "no v=spf1 record", txt_set=_txt_set(record, resolver))
    if len(found) > 1:
        return Result(
            record, MISMATCH, f"{len(found)} SPF records (RFC 7208: permerror)", tuple(found)
        )
    check = spf.SpfCheck()
    spf.count_lookups(record.name, resolver.query, check)
    problems = list(check.problems)
    if check.lookups > spf.LOOKUP_LIMIT:
        problems.append(
            f"needs {check.lookups} DNS lookups, more than the {spf.LOOKUP_LIMIT} "
            "RFC 7208 allows (permerror at receivers)"
        )
    if len(check.voids) > spf.VOID_LIMIT:
        problems.append(
            f"{len(check.voids)} void DNS lookups ({', '.join(check.voids)} find no records), "
            f"more than the {spf.VOID_LIMIT} RFC 7208 section 4.6.4 allows (permerror at "
            "receivers)"
        )
    problems += _authorisation(record, resolver, relay, check)
    merged = _merged_lookups(record, found[0], check, resolver)
    txt_set = _txt_set(record, resolver)
    if problems:
        return Result(record, MISMATCH, "; ".join(problems), tuple(found), merged, txt_set)
    return Result(record, OK, f"{check.lookups} DNS lookup(s)", tuple(found), merged, txt_set)


def _txt_set(record: Record, resolver: Resolver) -> tuple[tuple[str, ...], int] | None:
    if record.purpose not in (SPF, RP_SPF):
        return None
    return tuple(resolver.txt(record.name)), resolver.ttl(record.name, "TXT") or record.ttl


def _merged_lookups(
    record: Record, found: str, check: spf.SpfCheck, resolver: Resolver
) -> int | None:
    """What the published record would cost with postform's include merged in (the
    record `dns push` would write), for the names postform shares with the user."""
    if record.purpose not in (SPF, RP_SPF):
        return None
    include = record.value.split()[1]
    if include in found.split():
        return check.lookups
    return spf.lookups_of(record.name, spf.merge_include(found, include), resolver.query)


def _authorisation(
    record: Record, resolver: Resolver, relay: Mapping[str, Any], check: spf.SpfCheck
) -> list[str]:
    addresses = [
        ipaddress.ip_network(a, strict=False).network_address
        for a in [*relay.get("ipv4", []), *relay.get("ipv6", [])]
    ]
    if not addresses:
        spf_domain = relay.get("spf_domain", "")
        if record.purpose != RELAY_SPF and spf_domain not in check.includes:
            return [f"does not include {spf_domain}"]
        return []
    failing = [str(a) for a in addresses if spf.evaluate(record.name, a, resolver.query) != "pass"]
    return [f"does not authorise the relay address(es) {', '.join(failing)}"] if failing else []
