"""Who may open a connection now (Postfix's anvil, in one relay process): at most
`per_client` connections at once and `per_client_rate` a minute from one address, at
most `max_connections` in all (kept below the open-files limit), and room kept for new
clients: once the relay is 80 % full, an address that already holds FULL_SHARE
connections gets no more. Memory is bounded whatever addresses connect."""

from __future__ import annotations

import resource
import time
from collections import deque
from collections.abc import Callable

from relay import replies as R
from relay.contract.settings import SessionSettings

FULL_SHARE = 5  # connections an address keeps once the relay is nearly full
NEARLY_FULL = 0.8
FD_RESERVE = 64  # descriptors kept for the spool, SQLite, logs, DNS and delivery
MAX_TRACKED = 100_000  # addresses remembered for the rate; the oldest go first


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


class ConnectionGate:
    def __init__(
        self,
        settings: Callable[[], SessionSettings],
        open_files: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.open_files = open_files or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.clock = clock
        self.held: dict[str, int] = {}
        self.total = 0
        self.recent: dict[str, deque[float]] = {}  # connection times in the last minute

    def capacity(self) -> int:
        return max(1, min(self.settings().max_connections, self.open_files - FD_RESERVE))

    def admit(self, peer: str) -> str | None:
        """None when `peer` may connect (the caller then owes a release), else the reply."""
        s, held = self.settings(), self.held.get(peer, 0)
        capacity = self.capacity()
        if self.total >= capacity:
            return R.S421_RELAY_FULL
        if held >= s.per_client or (
            self.total >= NEARLY_FULL * capacity and held >= min(FULL_SHARE, s.per_client)
        ):
            return R.S421_TOO_MANY_CONNECTIONS.format(peer=peer)
        if not self._within_rate(peer, s.per_client_rate):
            return R.S421_CONNECTION_RATE.format(peer=peer, rate=s.per_client_rate)
        self.held[peer] = held + 1
        self.total += 1
        return None

    def release(self, peer: str) -> None:
        held = self.held.get(peer, 0)
        if held <= 1:
            self.held.pop(peer, None)
        else:
            self.held[peer] = held - 1
        self.total = max(0, self.total - 1)

    def _within_rate(self, peer: str, per_minute: int) -> bool:
        now = self.clock()
        times = self.recent.get(peer)
        if times is None:
            if len(self.recent) >= MAX_TRACKED:
                self._forget(now)
            times = self.recent[peer] = deque(maxlen=per_minute)
        while times and times[0] <= now - 60.0:
            times.popleft()
        if times.maxlen != per_minute:  # the setting changed
            times = self.recent[peer] = deque(times, maxlen=per_minute)
        if len(times) >= per_minute:
            return False
        times.append(now)
        return True

    def _forget(self, now: float) -> None:
        """Drop addresses idle for a minute; if none, the oldest half (bounded memory)."""
        idle = [p for p, t in self.recent.items() if not t or t[-1] <= now - 60.0]
        if not idle:
            idle = list(self.recent)[: len(self.recent) // 2]
        for peer in idle:
            del self.recent[peer]
