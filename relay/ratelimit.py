"""The relay's service limits: a token bucket for messages per minute and a per-UTC-day
recipient counter. Both take a clock so tests can move time; both can be saved and
restored so limits survive a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

Clock = Callable[[], float]


@dataclass
class TokenBucket:
    """`per_minute` tokens a minute, bursting up to a minute's worth."""

    per_minute: int
    clock: Clock = time.time
    tokens: float = -1.0
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens, self.updated = float(self.per_minute), self.clock()

    def take(self) -> bool:
        now = self.clock()
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.per_minute), self.tokens + elapsed * self.per_minute / 60)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


@dataclass
class DailyCounter:
    """Accepted recipients in the current UTC day; `pending` is what is not saved yet."""

    clock: Clock = time.time
    day: str = ""
    count: int = 0
    pending: int = field(default=0)
    _day_number: int = field(default=-1, repr=False)

    def _roll(self) -> None:
        now = self.clock()
        number = int(now // 86_400)  # UTC days since the epoch: cheap to compare
        if number != self._day_number:
            today = utc_day(now)
            if today != self.day:
                self.day, self.count, self.pending = today, 0, 0
            self._day_number = number

    def would_exceed(self, extra: int, limit: int) -> bool:
        self._roll()
        return self.count + extra > limit

    def add(self, n: int) -> None:
        self._roll()
        self.count += n
        self.pending += n
