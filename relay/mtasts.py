"""MTA-STS (RFC 8461): a recipient domain's published promise that its MX hosts take
mail over TLS with certificates valid for their names.

For a destination the relay looks up the `_mta-sts.<domain>` TXT record (at most every
TXT_RECHECK seconds); when it names a policy id it has not cached, the policy is fetched
from `https://mta-sts.<domain>/.well-known/mta-sts.txt` (a verified certificate, no
redirects, 64 KiB at most, a bounded wait) and cached for its max_age. A cached policy
stays in force until it expires even when the TXT record or the web server goes away,
which is what keeps an attacker who strips them from downgrading delivery.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.resolver

from relay.mx import MxResolver

WELL_KNOWN = "/.well-known/mta-sts.txt"
MAX_POLICY_BYTES = 64 * 1024
MAX_AGE_LIMIT = 31_557_600  # RFC 8461 section 3.2: about a year
TXT_RECHECK = 300.0  # seconds between looks at the TXT record of a cached domain
FETCH_TIMEOUT = 10.0
_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


class PolicyFetchFailed(Exception):
    """The policy could not be had (no server, a bad certificate, a malformed policy)."""


@dataclass(frozen=True)
class StsPolicy:
    domain: str
    policy_id: str
    mode: str  # enforce | testing | none
    mx: tuple[str, ...]
    max_age: int

    def allows(self, host: str) -> bool:
        """RFC 8461 section 4.1: an exact name, or `*.` matching one leftmost label."""
        host = host.lower().rstrip(".")
        for pattern in self.mx:
            if pattern.startswith("*."):
                head, _, rest = host.partition(".")
                if head and rest == pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False


def parse_policy(domain: str, policy_id: str, text: str) -> StsPolicy:
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), []).append(value.strip())
    if fields.get("version") != ["STSv1"]:
        raise PolicyFetchFailed(f"{domain}: policy version is not STSv1")
    mode = (fields.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        raise PolicyFetchFailed(f"{domain}: policy mode {mode!r} is not enforce|testing|none")
    try:
        max_age = int((fields.get("max_age") or [""])[0])
    except ValueError:
        raise PolicyFetchFailed(f"{domain}: policy max_age is not a number") from None
    mx = tuple(p.lower().rstrip(".") for p in fields.get("mx", []))
    if mode != "none" and not mx:
        raise PolicyFetchFailed(f"{domain}: policy lists no mx")
    return StsPolicy(domain, policy_id, mode, mx, max(0, min(max_age, MAX_AGE_LIMIT)))


@dataclass
class _Cached:
    policy: StsPolicy
    expires: float
    txt_checked: float


class MtaSts:
    def __init__(
        self,
        mx: MxResolver,
        port: int = 443,
        clock: Callable[[], float] = time.time,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.mx = mx
        self.port = port  # 443, or a test's HTTPS server on loopback
        self.clock = clock
        self.timeout = timeout
        self._cache: dict[str, _Cached] = {}
        self._no_record: dict[str, float] = {}  # domain -> when it had no TXT record
        self.fetched = 0

    async def policy(self, domain: str) -> StsPolicy | None:
        """The domain's policy in force, or None. Raises PolicyFetchFailed only when a
        new policy is announced, none is cached and it cannot be fetched."""
        domain = domain.lower().rstrip(".")
        now = self.clock()
        cached = self._cache.get(domain)
        if cached is not None and cached.expires <= now:
            del self._cache[domain]
            cached = None
        if cached is not None and now - cached.txt_checked < TXT_RECHECK:
            return cached.policy
        if cached is None and now - self._no_record.get(domain, -TXT_RECHECK) < TXT_RECHECK:
            return None
        policy_id = await self._record(domain)
        if policy_id is None:
            if cached is None:
                self._no_record[domain] = now
                return None
            cached.txt_checked = now  # the record went away: the cached policy holds
            return cached.policy
        if cached is not None and cached.policy.policy_id == policy_id:
            cached.txt_checked = now
            return cached.policy
        try:
            policy = await self._fetch(domain, policy_id)
        except PolicyFetchFailed:
            if cached is not None:  # keep the old one until it expires (section 5.1)
                cached.txt_checked = now
                return cached.policy
            raise
        self._cache[domain] = _Cached(policy, now + policy.max_age, now)
        self._no_record.pop(domain, None)
        return policy

    async def _record(self, domain: str) -> str | None:
        try:
            answer = await self.mx.resolver.resolve(
                f"_mta-sts.{domain}", "TXT", raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return None
        except dns.exception.DNSException:
            return None  # cannot tell: as without a record (a cached policy still holds)
        texts = [
            b"".join(r.strings).decode("ascii", "replace")
            for r in (answer.rrset or [])
            if hasattr(r, "strings")
        ]
        records = [t for t in texts if t.startswith("v=STSv1")]
        if len(records) != 1:
            return None  # none, or several: no policy (section 3.1)
        fields = dict(
            part.strip().partition("=")[::2] for part in records[0].split(";") if "=" in part
        )
        policy_id = fields.get("id", "").strip()
        return policy_id if _ID.match(policy_id) else None

    async def _fetch(self, domain: str, policy_id: str) -> StsPolicy:
        host = f"mta-sts.{domain}"
        addresses = await self.mx.addresses(host)
        if not addresses:
            raise PolicyFetchFailed(f"{host} has no address")
        loop = asyncio.get_running_loop()
        errors = []
        for address in addresses:
            try:
                text = await asyncio.wait_for(
                    loop.run_in_executor(None, self._get, host, address), self.timeout + 1
                )
            except (PolicyFetchFailed, TimeoutError) as exc:
                errors.append(str(exc) or f"{host} ({address}): no answer in {self.timeout:g}s")
                continue
            self.fetched += 1
            return parse_policy(domain, policy_id, text)
        raise PolicyFetchFailed("; ".join(errors))

    def _get(self, host: str, address: str) -> str:
        """GET the policy from `address`, verifying the certificate for `host`."""
        context = ssl.create_default_context()
        connection = _PinnedHTTPS(host, address, self.port, self.timeout, context)
        try:
            connection.request("GET", WELL_KNOWN, headers={"Host": host})
            response = connection.getresponse()
            body = response.read(MAX_POLICY_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise PolicyFetchFailed(f"{host} ({address}): {type(exc).__name__}: {exc}") from None
        finally:
            connection.close()
        if response.status != 200:  # redirects are not followed (section 3.3)
            raise PolicyFetchFailed(f"{host}: HTTP {response.status} for {WELL_KNOWN}")
        kind = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "text/plain":
            raise PolicyFetchFailed(f"{host}: policy served as {kind or 'no type'}")
        if len(body) > MAX_POLICY_BYTES:
            raise PolicyFetchFailed(f"{host}: policy larger than {MAX_POLICY_BYTES} bytes")
        return body.decode("utf-8", "replace")


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address found through the relay's own resolver, with SNI and the
    certificate check made for the host name."""

    def __init__(
        self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._context = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)
