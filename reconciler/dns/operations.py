"""What the DNS commands do with the applied state: list its records, check them live
(recording the results and DKIM status moves), push them to a zone."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler.dns.foreign import foreign_records, refusal
from reconciler.dns.lifecycle import StatusChange, record_foreign, record_results
from reconciler.dns.lookup import DnsError, Resolver
from reconciler.dns.push import Op, plan_zone, send
from reconciler.dns.records import DKIM, Record, records_for
from reconciler.dns.results import Result
from reconciler.dns.tsig import read_key_file
from reconciler.dns.verify import verify
from reconciler.dns.zonecut import ZoneCut, ZoneCuts
from reconciler.errors import PostformError
from reconciler.manager import Manager
from reconciler.state.model import State


def applied_records(manager: Manager, state: State, domain: str | None = None) -> list[Record]:
    records = records_for(state.resources.values(), manager.config.dns_ttl)
    if domain is not None:
        records = [r for r in records if r.zone == domain.lower()]
        if not records:
            raise PostformError(f"no applied records in zone {domain} (see `postform dns records`)")
    return records


def check_live(
    manager: Manager,
    nameserver: str | None,
    timeout: float,
    lock_timeout: float,
    domain: str | None,
) -> tuple[list[Result], list[StatusChange]]:
    """Verify every applied record live, then record the results and DKIM status moves."""
    with manager.backend.lock("dns verify", lock_timeout):
        state = manager.backend.read()
        if not state.exists:
            raise PostformError(
                f"nothing has been applied to the {manager.backend.describe()} yet: run "
                "`postform apply` first"
            )
        records = applied_records(manager, state, domain)
        relay = state.resources.get("relay", {}).get("attributes", {})
        resolver = Resolver(nameserver, timeout)
        results = verify(records, resolver, relay)
        new_state, moves = record_results(state, results)
        new_state = record_foreign(new_state, _pending_dkim(manager, state, domain, resolver))
        manager.observe(new_state)
    return results, moves


def _pending_dkim(
    manager: Manager, state: State, domain: str | None, resolver: Resolver
) -> dict[str, tuple[str, list[str]]]:
    """What is published at the names of declared selectors not applied yet: record key
    -> (address, DKIM records found). A name that cannot be asked (a zone the server
    does not hold) is left out: these names are not postform's yet."""
    seen: dict[str, tuple[str, list[str]]] = {}
    for name, body in manager.config.domains.items():
        if domain is not None and name != domain.lower():
            continue
        for key in body["dkim"]:
            address = f'dkim["{name}/{key["selector"]}"]'
            if address in state.resources:
                continue
            fqdn = f"{key['selector']}._domainkey.{name}"
            try:
                found = [t for t in resolver.txt(fqdn) if "p=" in t]
            except DnsError:
                continue
            seen[f"{fqdn}/TXT/{DKIM}"] = (address, found)
    return seen


@dataclass(frozen=True)
class PushOutcome:
    zone: str
    server: str
    ops: list[Op]
    sent: bool
    # Records under the zone's name that another zone holds, by where they belong.
    elsewhere: dict[ZoneCut, list[Record]] = field(default_factory=dict)


def push_zone(
    manager: Manager,
    server: str,
    zone: str,
    key_file: Path | None,
    *,
    dry_run: bool,
    timeout: float,
    lock_timeout: float,
    force: bool = False,
) -> PushOutcome:
    """Send RFC 2136 updates so `zone` holds exactly postform's records (merging SPF).
    Refuses (ForeignRecordError, before anything is sent, a dry run too) to overwrite a
    record at a name postform writes alone that postform did not publish, unless
    `force`."""
    zone = zone.lower().rstrip(".")
    key = read_key_file(key_file) if key_file else None
    cuts = ZoneCuts(server, timeout)
    if cuts.of(zone) != ZoneCut(zone, served=True):
        raise PostformError(
            f"{server} does not hold zone {zone}: {zone} is {cuts.of(zone).describe()}"
        )
    with manager.backend.lock("dns push", lock_timeout):
        state = manager.backend.read()
        under = [
            r
            for r in records_for(state.resources.values(), manager.config.dns_ttl)
            if r.name == zone or r.name.endswith("." + zone)
        ]
        home = ZoneCut(zone, served=True)
        wanted = [r for r in under if cuts.of(r.name) == home]
        elsewhere: dict[ZoneCut, list[Record]] = {}
        for r in under:
            if cuts.of(r.name) != home:
                elsewhere.setdefault(cuts.of(r.name), []).append(r)
        published = [
            row
            for row in state.dns.get("published", {}).get(zone, [])
            if cuts.of(row["name"]) == home  # an earlier push may have put it in the wrong zone
        ]
        if not under and not published:
            raise PostformError(f"postform has no records for zone {zone}")
        resolver = Resolver(server, timeout)
        ops = plan_zone(wanted, published, resolver)
        if ops and not force:
            found = foreign_records(wanted, published, state.dns.get("verification", {}), resolver)
            if found:
                raise refusal(zone, found)
        if not ops or dry_run:
            return PushOutcome(zone, server, ops, sent=False, elsewhere=elsewhere)
        send(zone, ops, server, key, timeout)
        published_all = {**state.dns.get("published", {}), zone: _rows(wanted)}
        manager.observe(replace(state, dns={**state.dns, "published": published_all}))
    return PushOutcome(zone, server, ops, sent=True, elsewhere=elsewhere)


def _rows(records: list[Record]) -> list[dict[str, str]]:
    """What the state keeps of the records a push published."""
    return [
        {"name": r.name, "type": r.type, "purpose": r.purpose, "value": r.value, "ttl": str(r.ttl)}
        for r in records
    ]
