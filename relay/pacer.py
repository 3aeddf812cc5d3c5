"""Messages per minute to one destination (`relay.delivery.destinations.<d>.rate`), for a
provider that throttles senders: transactions are spaced evenly, 60/rate seconds apart.
A message whose turn is near waits for it; one further back goes back to the queue
until its turn, without an attempt counted against it."""

from __future__ import annotations

import time
from collections.abc import Callable

WAIT_IN_PLACE = 2.0  # seconds a message may wait for its turn in place


class Pacer:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._next: dict[str, float] = {}  # destination -> earliest start of the next one

    def turn(self, dest: str, rate: int | None, messages: int = 1) -> float:
        """Seconds to wait before sending `messages` to `dest`. Up to WAIT_IN_PLACE the
        turn is taken (the caller sleeps, then sends); beyond it nothing is taken and the
        caller comes back after that many seconds."""
        if rate is None:
            return 0.0
        now = self.clock()
        start = max(now, self._next.get(dest, now))
        wait = start - now
        if wait <= WAIT_IN_PLACE:
            self._next[dest] = start + messages * 60.0 / rate
        return wait
