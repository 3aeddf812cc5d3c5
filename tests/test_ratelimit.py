"""Limits with a fake clock: the token bucket, the UTC-day counter, the login throttle."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from pathlib import Path

from relay.auth import FailureTracker, decode_plain
from relay.ratelimit import DailyCounter, TenancyLimits, TokenBucket
from relay.store.interfaces import Verdict
from relay.store.sqlite import EmbeddedStore


class Clock:
    def __init__(self, now: float = 1_795_804_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_a_minute_then_refills_per_second() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock=clock)
    assert all(bucket.take() for _ in range(60))
    assert not bucket.take()
    clock.now += 1.0
    assert bucket.take() and not bucket.take()
    clock.now += 3600
    assert sum(bucket.take() for _ in range(100)) == 60


def test_daily_counter_resets_at_utc_midnight() -> None:
    clock = Clock(86_400 * 20_000 + 86_399.0)  # one second before a UTC midnight
    counter = DailyCounter(clock=clock)
    counter.add(4)
    assert counter.would_exceed(1, 4) and not counter.would_exceed(0, 4)
    day = counter.day
    clock.now += 1.0
    assert not counter.would_exceed(4, 4)
    assert counter.day != day and counter.count == 0
    counter.release(4, day)  # yesterday's transactions that failed after midnight
    assert counter.count == 0 and not counter.would_exceed(4, 4)
    counter.add(2)
    counter.release(1, counter.day)  # today's come back
    assert counter.count == 1


def test_failures_slow_then_block_then_expire() -> None:
    clock = Clock()
    tracker = FailureTracker(clock=clock)

    async def run() -> None:
        counts = [await tracker.fail("192.0.2.1", "app.prod") for _ in range(4)]
        assert [tracker.pause_for(c) for c in counts] == [0.0, 0.0, 0.0, 1.0]
        assert not await tracker.blocked("192.0.2.1", "app.prod")
        await tracker.fail("192.0.2.1", "app.prod")
        assert await tracker.blocked("192.0.2.1", "app.prod")
        assert not await tracker.blocked("192.0.2.2", "app.prod")
        assert not await tracker.blocked("192.0.2.1", "billing.prod")  # another credential
        clock.now += 901
        assert not await tracker.blocked("192.0.2.1", "app.prod")

    asyncio.run(run())


def test_failures_outside_the_window_do_not_count_and_memory_is_bounded() -> None:
    clock = Clock()
    tracker = FailureTracker(clock=clock, max_keys=100)

    async def run() -> None:
        for _ in range(4):
            await tracker.fail("a", "u")
        clock.now += 601
        assert await tracker.fail("a", "u") == 1
        for i in range(1_000):  # a guesser inventing usernames
            await tracker.fail("b", f"user{i}")
        assert len(tracker._failures) <= 100

    asyncio.run(run())


def test_decode_plain() -> None:
    assert decode_plain(b"\0user\0pass") == ("user", "pass")
    assert decode_plain(b"user\0user\0pass") == ("user", "pass")
    assert decode_plain(b"admin\0user\0pass") is None  # no proxy authorisation
    assert decode_plain(b"user\0pass") is None
    assert decode_plain(base64.b64decode("AP8A")) is None  # not UTF-8


def test_one_user_takes_at_most_its_share_and_what_is_not_accepted_comes_back() -> None:
    async def run(limits: TenancyLimits) -> None:
        taken = [await limits.take_message("flood", 30) for _ in range(40)]
        assert taken.count(Verdict.ADMIT) == 30  # its share of 60 a minute
        assert taken[30:] == [Verdict.USER_LIMITED] * 10
        assert all([await limits.take_message("other", 30) for _ in range(30)])
        assert await limits.take_message("other", 30) is Verdict.USER_LIMITED
        for _ in range(5):  # five of flood's transactions ended without a 250
            limits.release_message("flood")
        assert [await limits.take_message("flood", 30) for _ in range(6)] == [Verdict.ADMIT] * 5 + [
            Verdict.USER_LIMITED
        ]
        assert await limits.take_message("third", 30) is Verdict.LIMITED  # the tenancy's 60
        assert limits.users["third"].tokens == 30  # its share was given back
        assert await limits.take_message("solo") is Verdict.LIMITED  # no share: tenancy only

    with tempfile.TemporaryDirectory() as folder:
        store = EmbeddedStore(Path(folder))
        asyncio.run(run(TenancyLimits(store.counters, 60, clock=Clock())))
        store.close()
