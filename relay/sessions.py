"""Outbound SMTP sessions kept open between messages, as Postfix's connection cache
(smtp_connection_cache_time_limit, smtp_connection_reuse_count_limit): a session that
ended its transaction well waits here, per (address, port, TLS, login), for the next
message to the same place, for up to `idle` seconds and `max_uses` transactions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from relay.smtpclient import SmtpClient

SessionKey = tuple[str, int, bool, str, str, str]


@dataclass
class _Kept:
    client: SmtpClient
    since: float
    uses: int


@dataclass
class SessionCache:
    idle: float = 5.0
    max_uses: int = 100
    per_key: int = 8
    clock: Callable[[], float] = time.monotonic
    opened: int = 0  # sessions opened (what the cache saves is what this does not count)
    reused: int = 0  # transactions on a kept session
    _kept: dict[SessionKey, list[_Kept]] = field(default_factory=dict)

    def take(self, key: SessionKey) -> tuple[SmtpClient, int] | None:
        """A kept session for `key` and how many transactions it has had, or None."""
        kept = self._kept.get(key)
        now = self.clock()
        while kept:
            entry = kept.pop()
            if now - entry.since <= self.idle and entry.client.is_connected:
                self.reused += 1
                return entry.client, entry.uses
            entry.client.close()
        return None

    def wants(self, key: SessionKey, uses: int) -> bool:
        return uses < self.max_uses and len(self._kept.get(key, ())) < self.per_key

    def give(self, key: SessionKey, client: SmtpClient, uses: int) -> None:
        self._kept.setdefault(key, []).append(_Kept(client, self.clock(), uses))

    async def sweep(self, everything: bool = False) -> None:
        """QUIT the sessions idle for longer than `idle` (all of them with `everything`)."""
        now = self.clock()
        stale: list[SmtpClient] = []
        for key in list(self._kept):
            keep = [e for e in self._kept[key] if not everything and now - e.since <= self.idle]
            stale += [e.client for e in self._kept[key] if e not in keep]
            if keep:
                self._kept[key] = keep
            else:
                del self._kept[key]
        if stale:
            await asyncio.gather(*(c.quit() for c in stale))
