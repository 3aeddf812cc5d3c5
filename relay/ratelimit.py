"""The relay's service limits: a token bucket for messages per minute, a per-UTC-day
recipient counter, and TenancyLimits, which holds both for one relay process. All take a
clock so tests can move time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from relay.store.interfaces import CounterStore, Verdict

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

    def give_back(self) -> None:
        self.tokens = min(float(self.per_minute), self.tokens + 1)


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

    def release(self, n: int, day: str) -> None:
        """Give back reserved recipients whose transaction did not complete (if they were
        reserved today: after midnight the new day starts from what it counted)."""
        self._roll()
        if day == self.day:
            self.count -= n
            self.pending -= n


class TenancyLimits:
    """The LimitGate of one relay (relay/store/interfaces.py): messages_per_minute and
    recipients_per_day kept in memory on the SMTP path, saved to a CounterStore every
    second and at shutdown (so limits survive a restart). With N worker processes each
    takes 1/N of the rate, and the daily total is shared through the store. A user's
    share of the rate is a bucket of its own, in memory (it restarts full)."""

    def __init__(
        self,
        store: CounterStore,
        per_minute: int,
        worker: tuple[int, int] = (0, 1),
        clock: Clock = time.time,
    ) -> None:
        self.store = store
        self.index, self.workers = worker
        self.bucket = TokenBucket(self._share(per_minute), clock)
        saved = store.load_bucket(self.bucket_name)
        if saved is not None:
            self.bucket.tokens = min(saved[0], float(self.bucket.per_minute))
            self.bucket.updated = saved[1]
        self.daily = DailyCounter(clock)
        self.daily.day = utc_day(clock())
        self.daily.count = store.day_count(self.daily.day)
        self.clock = clock
        self.users: dict[str, TokenBucket] = {}

    @property
    def bucket_name(self) -> str:
        return f"messages/{self.index}/{self.workers}"

    def _share(self, per_minute: int) -> int:
        return max(1, per_minute // self.workers)

    def set_rate(self, per_minute: int) -> None:
        self.bucket.per_minute = self._share(per_minute)

    async def take_message(self, user: str = "", user_limit: int | None = None) -> Verdict:
        share = self._user_bucket(user, user_limit)
        if share is not None and not share.take():
            return Verdict.USER_LIMITED
        if self.bucket.take():
            return Verdict.ADMIT
        if share is not None:
            share.give_back()
        return Verdict.LIMITED

    def _user_bucket(self, user: str, user_limit: int | None) -> TokenBucket | None:
        if user_limit is None:
            self.users.pop(user, None)
            return None
        per_minute = self._share(user_limit)
        bucket = self.users.get(user)
        if bucket is None:
            bucket = self.users[user] = TokenBucket(per_minute, self.clock)
        bucket.per_minute = per_minute
        return bucket

    def release_message(self, user: str = "") -> None:
        self.bucket.give_back()
        share = self.users.get(user)
        if share is not None:
            share.give_back()

    async def reserve_recipient(self, limit: int) -> Verdict:
        if self.daily.would_exceed(1, limit):
            return Verdict.LIMITED
        self.daily.add(1)
        return Verdict.ADMIT

    @property
    def day(self) -> str:
        return self.daily.day

    def release_recipients(self, count: int, day: str) -> None:
        self.daily.release(count, day)

    async def close(self) -> None:
        self.flush()

    def flush(self) -> None:
        """Save counters; with several workers, learn the shared daily total."""
        if self.daily.pending:
            self.daily.count = self.store.add_day(self.daily.day, self.daily.pending)
            self.daily.pending = 0
        else:
            self.daily.count = max(self.daily.count, self.store.day_count(self.daily.day))
        self.store.save_bucket(self.bucket_name, self.bucket.tokens, self.bucket.updated)
