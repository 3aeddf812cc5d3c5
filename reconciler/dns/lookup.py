"""Bounded DNS queries with dnspython, with failures a person can act on.

`Resolver` answers "what is published here": a list of records, empty when the
name or type does not exist (NXDOMAIN, NODATA). Anything else (timeout,
SERVFAIL, REFUSED, unreachable server) raises DnsError naming the server and
the wait. Truncated UDP answers are retried over TCP by dnspython.
"""

from __future__ import annotations

import ipaddress
import socket

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset

from reconciler.errors import PostformError
from relay.contract.hostport import split_hostport

DEFAULT_TIMEOUT = 3.0


class DnsError(PostformError):
    """A DNS query failed in a way that says nothing about the record."""


def parse_server(text: str, default_port: int = 53) -> tuple[str, int]:
    """'HOST', 'HOST:PORT', '[V6]:PORT' or a bare IPv6 address -> (address, port).
    A host name is resolved once here (dnspython wants addresses)."""
    try:
        host, port = split_hostport(text, default_port)
    except ValueError:
        raise DnsError(f"{text!r} is not HOST[:PORT] (a port is 1-65535)") from None
    try:
        ipaddress.ip_address(host)
        return host, port
    except ValueError:
        pass
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise DnsError(f"cannot resolve the server name {host}: {exc}") from None
    return str(info[0][4][0]), port


class Resolver:
    def __init__(self, nameserver: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        if nameserver:
            host, port = parse_server(nameserver)
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [host]
            self._resolver.port = port
            self.where = f"{host}:{port}" if port != 53 else host
        else:
            self._resolver = dns.resolver.Resolver()
            self.where = "the system resolver"
        self._resolver.lifetime = timeout
        self._resolver.timeout = timeout
        self._resolver.cache = None
        self._memo: dict[tuple[str, str], list[str]] = {}

    def query(self, name: str, rtype: str) -> list[str]:
        """Record data as text; TXT records come back as their joined strings.

        Answers are remembered for the life of this object (one command run), so an SPF
        tree walked twice (count, then evaluate) costs one query per name.
        """
        key = (name.lower(), rtype)
        if key not in self._memo:
            self._memo[key] = self._query(name, rtype)
        return self._memo[key]

    def _query(self, name: str, rtype: str) -> list[str]:
        return [text for text, _ in self.raw(name, rtype)]

    def _answer(self, name: str, rtype: str) -> dns.rrset.RRset | None:
        try:
            answer = self._resolver.resolve(name, rtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.LifetimeTimeout:
            raise DnsError(
                f"no answer from {self.where} for {name} {rtype} within "
                f"{self.timeout:g}s (is the server reachable? see --timeout)"
            ) from None
        except dns.resolver.NoNameservers as exc:
            raise DnsError(f"{self.where} could not answer {name} {rtype}: {_why(exc)}") from None
        except dns.exception.DNSException as exc:
            raise DnsError(f"query {name} {rtype} to {self.where} failed: {exc}") from None
        return answer.rrset

    def ttl(self, name: str, rtype: str) -> int | None:
        """The TTL of the record set at name/type as the server answers it (uncached)."""
        answer = self._answer(name, rtype)
        return None if answer is None else int(answer.ttl)

    def raw(self, name: str, rtype: str) -> list[tuple[str, str]]:
        """(text as `query` gives it, rdata in zone-file syntax) per record, uncached: push
        needs the exact rdata (TXT string boundaries included) to delete one."""
        answer = self._answer(name, rtype)
        if answer is None:
            return []
        out = []
        for rdata in answer:
            text = (
                b"".join(rdata.strings).decode(errors="replace")
                if rtype == "TXT"
                else rdata.to_text()
            )
            out.append((text, rdata.to_text()))
        return out

    def txt(self, name: str) -> list[str]:
        return self.query(name, "TXT")


def _why(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    for *_, answer in errors:
        if isinstance(answer, dns.message.Message):
            return f"answered {dns.rcode.to_text(answer.rcode())}"
        if answer:
            return str(answer)
    return "SERVFAIL or no usable answer"
