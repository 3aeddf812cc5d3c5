"""Backpressure: when the queue grows faster than delivery drains it, acceptance slows
before latency explodes, as Postfix's in_flow_delay does, and stops with a temporary
failure above a high-water mark.

Past `relay.delivery.backlog_slow` messages waiting, each 250 to DATA is delayed, by 0 s
at the mark growing to 1 s at twice the mark; at `backlog_max` a message is refused with
451 4.3.2 (the client retries later). The count is the queue folder's, looked at no more
than once a second, so it holds whichever process delivers. 0 turns either off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from relay.contract.settings import DeliverySettings

MAX_DELAY = 1.0


class Backlog:
    def __init__(self, queue: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.clock = clock
        self._count = 0
        self._counted_at = float("-inf")

    def count(self) -> int:
        """Messages in the queue, at most a second old."""
        now = self.clock()
        if now - self._counted_at >= 1.0:
            try:
                with os.scandir(self.queue) as entries:
                    self._count = sum(1 for e in entries if e.name.endswith(".msg"))
            except FileNotFoundError:
                self._count = 0
            self._counted_at = now
        return self._count

    def pressure(self, settings: DeliverySettings) -> tuple[float, int | None]:
        """(seconds to hold the reply, the backlog when the queue is full else None)."""
        slow, full = settings.backlog_slow, settings.backlog_max
        if not slow and not full:
            return 0.0, None
        waiting = self.count()
        if full and waiting >= full:
            return 0.0, waiting
        if slow and waiting > slow:
            return min(MAX_DELAY, MAX_DELAY * (waiting - slow) / slow), None
        return 0.0, None
