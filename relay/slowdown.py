"""Back off a destination that asks the relay to slow down.

A `421` (at connect, or to any command) means "not now, and not so fast": the relay
stops opening sessions to that destination for a while (30 s, doubling up to 10 min
while it keeps answering so), and the recipients waiting for it are deferred without a
connection. The first answer that is not a 421 ends the pause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from relay.outbound import Reply

FIRST_PAUSE = 30.0
LONGEST_PAUSE = 600.0


def asks_to_slow_down(reply: Reply) -> bool:
    return reply.code == 421 or (reply.stage == "local" and " 421 " in f" {reply.text} ")


class SlowDown:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._paused: dict[str, tuple[float, float]] = {}  # destination -> (until, pause)

    def paused(self, dest: str) -> float:
        """Seconds left of `dest`'s pause (0: go ahead)."""
        until, _ = self._paused.get(dest, (0.0, 0.0))
        return max(0.0, until - self.clock())

    def heard(self, dest: str, replies: Iterable[Reply]) -> float:
        """Record what `dest` answered; the pause it starts (0 when it did not ask)."""
        if not any(asks_to_slow_down(r) for r in replies):
            self._paused.pop(dest, None)
            return 0.0
        _, last = self._paused.get(dest, (0.0, 0.0))
        pause = min(LONGEST_PAUSE, last * 2) if last else FIRST_PAUSE
        self._paused[dest] = (self.clock() + pause, pause)
        return pause
