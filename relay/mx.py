"""Where mail for a domain goes: its MX hosts in preference order (RFC 5321 5.1),
the domain itself when it has no MX (implicit MX), nowhere for a null MX (RFC 7505)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.rdata
import dns.rdtypes.ANY.MX
import dns.resolver

from relay.contract.hostport import split_hostport


class Undeliverable(Exception):
    """The domain cannot receive mail at all (null MX, no such domain): a hard bounce."""


class LookupFailed(Exception):
    """DNS could not answer now (timeout, SERVFAIL): a deferral."""


@dataclass(frozen=True)
class Destination:
    host: str
    addresses: tuple[str, ...]


def _resolver(nameserver: str | None, timeout: float) -> dns.asyncresolver.Resolver:
    if nameserver:
        host, port = split_hostport(nameserver, default_port=53)
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = port
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = resolver.timeout = timeout
    return resolver


class MxResolver:
    def __init__(self, nameserver: str | None = None, timeout: float = 10.0) -> None:
        self.resolver = _resolver(nameserver, timeout)

    async def _answer(self, name: str, rtype: str) -> list[dns.rdata.Rdata]:
        try:
            answer = await self.resolver.resolve(name, rtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise Undeliverable(f"{name}: no such domain (NXDOMAIN)") from None
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise LookupFailed(f"DNS lookup of {name} {rtype} failed: {exc}") from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"DNS lookup of {name} {rtype} failed: {exc}") from None
        return list(answer.rrset) if answer.rrset is not None else []

    async def addresses(self, host: str) -> tuple[str, ...]:
        found: list[str] = []
        for rtype in ("A", "AAAA"):
            try:
                found += [r.to_text() for r in await self._answer(host, rtype)]
            except Undeliverable:
                return ()
        return tuple(found)

    async def destinations(self, domain: str) -> list[Destination]:
        """MX hosts, lowest preference first (equal ones shuffled), with their addresses."""
        records = await self._answer(domain, "MX")
        if not records:
            addresses = await self.addresses(domain)
            if not addresses:
                raise Undeliverable(f"{domain} has no MX and no address record")
            return [Destination(domain, addresses)]
        mx = [r for r in records if isinstance(r, dns.rdtypes.ANY.MX.MX)]
        if len(mx) == 1 and mx[0].exchange.to_text() == ".":
            raise Undeliverable(f"{domain} does not accept mail (null MX, RFC 7505)")
        ordered = sorted(mx, key=lambda r: (r.preference, random.random()))
        out = []
        failures = []
        for record in ordered:
            host = record.exchange.to_text().rstrip(".")
            try:
                out.append(Destination(host, await self.addresses(host)))
            except LookupFailed as exc:  # one broken MX host must not hide the others
                failures.append(str(exc))
        if failures and not any(d.addresses for d in out):
            raise LookupFailed("; ".join(failures))
        return out
