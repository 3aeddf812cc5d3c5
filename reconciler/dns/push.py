"""RFC 2136 dynamic update of one zone: add what is missing, replace what differs,
delete only what postform published and no longer wants.

SPF at a name the user shares is merged, not overwritten: postform adds its
`include:` to an existing v=spf1 record and, when the record is no longer
wanted, takes its include out again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.query
import dns.rcode
import dns.tsig
import dns.update

from reconciler.dns import spf
from reconciler.dns.foreign import same_kind
from reconciler.dns.formats import rdata_text
from reconciler.dns.lookup import DnsError, Resolver, parse_server
from reconciler.dns.records import DKIM, DMARC, RELAY_SPF, Record
from reconciler.dns.tsig import TsigKey


@dataclass(frozen=True)
class Op:
    action: str  # add | delete
    name: str
    type: str
    rdata: str  # zone-file syntax
    ttl: int = 0

    def __str__(self) -> str:
        sign = "+" if self.action == "add" else "-"
        return f"  {sign} {self.name}. {self.type} {self.rdata}"


def _txt(value: str, ttl: int, name: str, purpose: str = "") -> Record:
    return Record("", name, "TXT", purpose, value, ttl, "")


def plan_zone(
    wanted: Iterable[Record], published: Iterable[dict[str, str]], resolver: Resolver
) -> list[Op]:
    """The update operations that bring the zone to `wanted` (empty when it already is)."""
    ops: list[Op] = []
    wanted = list(wanted)
    published = list(published)
    keys = {r.key for r in wanted}
    for record in wanted:
        ops += _converge(record, resolver, _stale_includes(record, published))
    for old in published:
        if f"{old['name']}/{old['type']}/{old['purpose']}" not in keys:
            ops += _withdraw(old, resolver)
    return ops


def _stale_includes(record: Record, published: list[dict[str, str]]) -> set[str]:
    """Includes postform merged into this SPF record earlier that it no longer wants (after
    relay.spf_domain changed): left in place they would point at a withdrawn record."""
    if record.purpose not in ("spf", "return-path-spf"):
        return set()
    current = record.value.split()[1]
    return {
        old["value"].split()[1]
        for old in published
        if old["name"] == record.name
        and old["purpose"] == record.purpose
        and len(old["value"].split()) > 1
        and old["value"].split()[1] != current
    }


def _live(resolver: Resolver, name: str, rtype: str) -> list[tuple[str, str]]:
    return resolver.raw(name, rtype)


def _converge(record: Record, resolver: Resolver, stale: set[str]) -> list[Op]:
    ours = rdata_text(record)
    if record.type == "MX":
        live = _live(resolver, record.name, "MX")
        if [text for text, _ in live] == [record.value] and _same_ttl(record, resolver):
            return []
        return [
            *(Op("delete", record.name, "MX", raw) for _, raw in live),
            Op("add", record.name, "MX", ours, record.ttl),
        ]
    live = [(t, raw) for t, raw in _live(resolver, record.name, "TXT") if same_kind(record, t)]
    if record.purpose in (DKIM, DMARC, RELAY_SPF):
        if [t for t, _ in live] == [record.value] and _same_ttl(record, resolver):
            return []
        return [
            *(Op("delete", record.name, "TXT", raw) for _, raw in live),
            Op("add", record.name, "TXT", ours, record.ttl),
        ]
    return _converge_spf(record, live, stale, resolver)


def _same_ttl(record: Record, resolver: Resolver) -> bool:
    """For names only postform writes (DKIM, DMARC, the relay's SPF, the return-path MX).
    A merged SPF record keeps the TTL of the user's record set: it is theirs too."""
    return resolver.ttl(record.name, record.type) in (None, record.ttl)


def _converge_spf(
    record: Record, live: list[tuple[str, str]], stale: set[str], resolver: Resolver
) -> list[Op]:
    # A name's TXT records are one set with one TTL, and an added record sets it for all:
    # the user's set (their SPF, a site-verification string) keeps its own.
    ttl = resolver.ttl(record.name, "TXT") or record.ttl
    if not live:
        return [Op("add", record.name, "TXT", rdata_text(record), ttl)]
    if len(live) > 1:
        raise DnsError(
            f"{record.name} has {len(live)} SPF records (an RFC 7208 permerror): "
            "merge them by hand, then push again"
        )
    text, raw = live[0]
    include = record.value.split()[1]
    kept = " ".join(t for t in text.split() if t not in stale)
    merged = kept if include in kept.split() else spf.merge_include(kept, include)
    if merged == text:
        return []
    _refuse_over_limit(record.name, text, merged, resolver)
    return [
        Op("delete", record.name, "TXT", raw),
        Op("add", record.name, "TXT", rdata_text(_txt(merged, ttl, record.name)), ttl),
    ]


def _refuse_over_limit(name: str, text: str, merged: str, resolver: Resolver) -> None:
    """Refuse, before anything is sent, a merge that takes the record past RFC 7208's
    10 DNS lookups: every receiver would answer permerror for all of the domain's mail."""
    after = spf.lookups_of(name, merged, resolver.query)
    if after <= spf.LOOKUP_LIMIT:
        return
    before = spf.lookups_of(name, text, resolver.query)
    raise DnsError(
        f"refusing to merge postform's include into the SPF record at {name}: it costs "
        f"{before} DNS lookup(s) now and would cost {after}, more than the "
        f"{spf.LOOKUP_LIMIT} RFC 7208 allows (a permerror at every receiver). Published: "
        f'"{text}". Flatten or remove an include there, then push again.'
    )


def _withdraw(old: dict[str, str], resolver: Resolver) -> list[Op]:
    live = _live(resolver, old["name"], old["type"])
    if old["purpose"] in ("spf", "return-path-spf"):
        include = old["value"].split()[1]
        for text, raw in live:
            if include in text.split():
                rest = [t for t in text.split() if t != include]
                keep = [t for t in rest[1:] if t.lstrip("+-~?").lower() != "all"]
                ops = [Op("delete", old["name"], "TXT", raw)]
                if keep:
                    merged = " ".join(rest)
                    ttl = resolver.ttl(old["name"], "TXT") or int(old["ttl"])
                    ops.append(
                        Op("add", old["name"], "TXT", rdata_text(_txt(merged, 0, old["name"])), ttl)
                    )
                return ops
        return []
    return [
        Op("delete", old["name"], old["type"], raw) for text, raw in live if text == old["value"]
    ]


def send(zone: str, ops: list[Op], server: str, key: TsigKey | None, timeout: float) -> None:
    """Send all operations as one UPDATE (applied atomically by the server)."""
    host, port = parse_server(server)
    if key is not None:
        update = dns.update.UpdateMessage(zone, keyring=key.keyring(), keyalgorithm=key.algorithm)
    else:
        update = dns.update.UpdateMessage(zone)
    for op in ops:
        if op.action == "add":
            update.add(op.name + ".", op.ttl, op.type, op.rdata)
        else:
            update.delete(op.name + ".", op.type, op.rdata)
    where = f"{host}:{port}"
    try:
        response = dns.query.tcp(update, host, port=port, timeout=timeout)
    except dns.tsig.PeerError as exc:
        raise DnsError(
            f"{where} rejected the TSIG signature ({type(exc).__name__}: {exc}): "
            "check the key name, algorithm and secret in --tsig-key-file"
        ) from None
    except dns.exception.Timeout:
        raise DnsError(
            f"no answer from {where} to the update of {zone} within {timeout:g}s"
        ) from None
    except (OSError, dns.exception.DNSException) as exc:
        raise DnsError(f"update of {zone} at {where} failed: {exc}") from None
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        hint = {
            dns.rcode.REFUSED: "the server's update policy does not allow this key or zone",
            dns.rcode.NOTAUTH: "the server is not authoritative for the zone, or refused the "
            "TSIG key",
            dns.rcode.NOTZONE: "a name is outside the zone",
        }.get(rcode, "")
        raise DnsError(
            f"{where} answered {dns.rcode.to_text(rcode)} to the update of {zone}"
            + (f": {hint}" if hint else "")
        )
