"""Keeps a flood of repetitive events from rotating the event log away.

Connections, disconnections and refusals are events a client can make as fast as the
relay answers (179,000 refused MAILs in 10 s rotated every file away, and every auth
failure with them). Those events pass a token bucket per (event, client address) and
one for all of them; what is held back is counted, and an `events_suppressed` line says
how many of each event, from which addresses, every SUMMARY_EVERY seconds. Other events
(logins, blocks, policy reloads, acceptances, deliveries) are never held back: they are
bounded by the login throttle and the rate limits.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

NOISY = frozenset(
    {
        "connect",
        "disconnect",
        "rejected",
        "connection_refused",
        "proxy_refused",
        "auth_busy",
        "data_too_slow",
        "too_many_errors",
        "queue_full",
    }
)
PER_PEER_BURST, PER_PEER_RATE = 50.0, 5.0  # lines, lines a second, per (event, address)
ALL_BURST, ALL_RATE = 200.0, 20.0  # for every noisy event together: ~4 KB/s at most
SUMMARY_EVERY = 10.0
MAX_KEYS = 10_000  # buckets and counted addresses kept at most (bounded memory)
TOP_PEERS = 10


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens, self.updated = tokens, now

    def take(self, burst: float, rate: float, now: float) -> bool:
        self.tokens = min(burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class FloodGuard:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._all = _Bucket(ALL_BURST, clock())
        self._peers: dict[tuple[str, str], _Bucket] = {}
        self._held: Counter[str] = Counter()
        self._held_from: Counter[str] = Counter()
        self._since = clock()

    def allow(self, event: str, fields: dict[str, Any]) -> bool:
        """Whether this event is written now (else it is counted for the summary)."""
        if event not in NOISY:
            return True
        now = self.clock()
        peer = str(fields.get("peer", ""))
        key = (event, peer)
        bucket = self._peers.get(key)
        if bucket is None:
            if len(self._peers) >= MAX_KEYS:
                self._peers.clear()  # every address starts with a full burst again
            bucket = self._peers[key] = _Bucket(PER_PEER_BURST, now)
        if bucket.take(PER_PEER_BURST, PER_PEER_RATE, now) and self._all.take(
            ALL_BURST, ALL_RATE, now
        ):
            return True
        self._held[event] += 1
        if peer in self._held_from or len(self._held_from) < MAX_KEYS:
            self._held_from[peer] += 1
        else:
            self._held_from["other"] += 1
        return False

    def summary(self, force: bool = False) -> dict[str, Any] | None:
        """What was held back since the last summary, when it is time to say so."""
        now = self.clock()
        if not self._held or (not force and now - self._since < SUMMARY_EVERY):
            return None
        summary = {
            "seconds": round(now - self._since, 1),
            "counts": dict(self._held),
            "top_peers": dict(self._held_from.most_common(TOP_PEERS)),
            "peers": len(self._held_from),
        }
        self._held.clear()
        self._held_from.clear()
        self._since = now
        return summary
