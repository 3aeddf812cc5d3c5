"""Which zone a name lives in, as the server being updated sees it.

`dns push --zone example.com` must send a record only to the zone that is
authoritative for its name: with `mail.example.com` a zone of its own (on the
same server, or delegated elsewhere), its records are not example.com's, and an
update that put them there would never show up in DNS. The server is asked for
each name's SOA without recursion, as a resolver finds a zone cut (dnspython's
`zone_for_name` walks the same way): an SOA in the answer or the authority
section names the zone the server holds the name in; a referral (NS in the
authority section, no SOA) is a delegation to other servers.
"""

from __future__ import annotations

from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

from reconciler.dns.lookup import DnsError, parse_server


@dataclass(frozen=True)
class ZoneCut:
    zone: str | None  # the zone holding the name; None when the server holds none
    served: bool  # False: delegated to other servers (zone is the delegation point)

    def describe(self) -> str:
        if self.zone is None:
            return "in no zone this server holds"
        if self.served:
            return f"in zone {self.zone} (a zone of its own on this server)"
        return f"in zone {self.zone}, delegated to other name servers"


class ZoneCuts:
    """Zone cuts from one server, each name asked once per command."""

    def __init__(self, server: str, timeout: float) -> None:
        self.host, self.port = parse_server(server)
        self.timeout = timeout
        self._memo: dict[str, ZoneCut] = {}

    def of(self, name: str) -> ZoneCut:
        name = name.lower().rstrip(".")
        if name not in self._memo:
            self._memo[name] = self._ask(name)
        return self._memo[name]

    def _ask(self, name: str) -> ZoneCut:
        query = dns.message.make_query(name + ".", dns.rdatatype.SOA)
        query.flags &= ~dns.flags.RD
        where = f"{self.host}:{self.port}"
        try:
            response, _ = dns.query.udp_with_fallback(
                query, self.host, timeout=self.timeout, port=self.port
            )
        except dns.exception.Timeout:
            raise DnsError(
                f"no answer from {where} to the SOA query for {name} within {self.timeout:g}s"
            ) from None
        except (OSError, dns.exception.DNSException) as exc:
            raise DnsError(f"SOA query for {name} to {where} failed: {exc}") from None
        return _cut(response)


def _cut(response: dns.message.Message) -> ZoneCut:
    if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return ZoneCut(None, served=False)  # REFUSED, NOTAUTH: not a zone of this server
    for section in (response.answer, response.authority):
        for rrset in section:
            if rrset.rdtype == dns.rdatatype.SOA:
                return ZoneCut(_text(rrset.name), served=True)
    for rrset in response.authority:
        if rrset.rdtype == dns.rdatatype.NS:
            return ZoneCut(_text(rrset.name), served=False)
    return ZoneCut(None, served=False)


def _text(name: dns.name.Name) -> str:
    return str(name.to_text(omit_final_dot=True)).lower()
