"""The shared relay store (relay.store.backend: postgres) as two relays use it, on a real
PostgreSQL: suppressions reach the other relay by NOTIFY, limits are leased so the two
never admit more than the limit together, the login throttle is one for both, and an
outage loses nothing and ends without a restart."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import pytest

from reconciler.state.pgschema import ensure_schema
from relay.events import EventLog
from relay.store.interfaces import Verdict
from relay.store.leases import LeasedLimits, batch_for
from relay.store.pgdirect import DirectStore
from relay.store.pgruntime import PgRuntime, PgTarget
from relay.store.pgstore import PgRelayStore
from relay.store.sqlite import outbox_count

SCHEMA = "postform"


@pytest.fixture
def target(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> PgTarget:
    monkeypatch.setenv("POSTFORM_PG_DSN", pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        ensure_schema(conn, SCHEMA)
    return PgTarget("POSTFORM_PG_DSN", SCHEMA, "production")


async def until(cond: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds it took for `cond` to hold; fails after `timeout`."""
    start = time.monotonic()
    while not cond():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


class Relay:
    """One relay's store, its background loop running, its events captured."""

    def __init__(self, target: PgTarget, folder: Path) -> None:
        self.stream = io.StringIO()
        self.store = PgRelayStore(target, folder, EventLog(stream=self.stream))
        self.task: asyncio.Task[None] | None = None

    def events(self, name: str) -> list[dict[str, object]]:
        rows = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [r for r in rows if r["event"] == name]

    async def __aenter__(self) -> Relay:
        self.task = asyncio.create_task(self.store.run())
        await until(self.store.runtime.listening, 10, "LISTEN")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        self.store.close()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 120))


def test_a_bounce_learned_by_one_relay_reaches_the_other_within_a_second(
    target: PgTarget, tmp_path: Path
) -> None:
    async def test() -> None:
        async with Relay(target, tmp_path / "a") as a, Relay(target, tmp_path / "b") as b:
            assert a.store.suppressions.hard_bounce("gone@example.org", "550 5.1.1 no", "Q1")
            assert a.store.suppressions.reason("gone@example.org") == "HARDBOUNCE"  # at once
            took = await until(
                lambda: b.store.suppressions.reason("Gone@example.org") is not None, 2, "b"
            )
            assert took < 1.0
            # the fleet's list holds it with what the bounce said
            direct = DirectStore(target)
            (row,) = direct.suppressions.list()
            direct.close()
            assert (row.address, row.reason, row.reply, row.queue_id) == (
                "gone@example.org", "HARDBOUNCE", "550 5.1.1 no", "Q1",
            )  # fmt: skip
            # released from the command line: both relays accept it again
            direct = DirectStore(target)
            assert direct.suppressions.remove("gone@example.org", "mailbox restored") is not None
            direct.close()
            await until(
                lambda: (
                    a.store.suppressions.reason("gone@example.org") is None
                    and b.store.suppressions.reason("gone@example.org") is None
                ),
                2,
                "release on both",
            )

    run(test)


def test_soft_bounces_are_counted_over_the_fleet(target: PgTarget, tmp_path: Path) -> None:
    async def test() -> None:
        async with Relay(target, tmp_path / "a") as a, Relay(target, tmp_path / "b") as b:
            for relay in (a, b, a):  # three soft bounces, on two relays: not yet
                relay.store.suppressions.soft_bounce("full@example.org", "452 full", "Q")
                await until(lambda r=relay: r.store.outbox.pending() == 0, 5, "flush")  # type: ignore[misc]
            assert b.store.suppressions.reason("full@example.org") is None
            b.store.suppressions.soft_bounce("full@example.org", "452 full", "Q4")  # the fourth
            await until(
                lambda: a.store.suppressions.reason("full@example.org") == "SOFTBOUNCE",
                3,
                "SOFTBOUNCE on a",
            )

    run(test)


def test_two_relays_together_never_admit_more_recipients_than_the_daily_limit(
    target: PgTarget,
) -> None:
    limit = 250  # a lease is batch_for(250) == 2 recipients

    async def test() -> None:
        one, two = PgRuntime(target), PgRuntime(target)
        a, b = LeasedLimits(one, 60000), LeasedLimits(two, 60000)
        admitted = 0
        assert await a.reserve_recipient(limit) is Verdict.ADMIT  # a now holds one more
        admitted += 1
        while await b.reserve_recipient(limit) is Verdict.ADMIT:
            admitted += 1
            assert admitted <= limit
        assert admitted == limit - 1  # a's unused lease is not lost ...
        await a.close()  # ... a gives it back when it stops
        assert await b.reserve_recipient(limit) is Verdict.ADMIT
        assert await b.reserve_recipient(limit) is Verdict.LIMITED
        # recipients of a transaction that did not end in 250 are spent again
        b.release_recipients(1, b.day)
        assert await b.reserve_recipient(limit) is Verdict.ADMIT
        await b.close()
        one.close()
        two.close()

    assert batch_for(limit) == 2
    run(test)


def test_the_rate_is_one_bucket_for_the_fleet(target: PgTarget) -> None:
    per_minute = 300  # a lease is 3 tokens

    async def test() -> None:
        runtimes = [PgRuntime(target) for _ in range(3)]
        gates = [LeasedLimits(r, per_minute) for r in runtimes]
        start = time.monotonic()
        admitted = 0
        for _ in range(200):  # more than the bucket holds, spread over three relays
            for gate in gates:
                if await gate.take_message() is Verdict.ADMIT:
                    admitted += 1
        refill = (time.monotonic() - start) * per_minute / 60
        assert per_minute - 3 * batch_for(per_minute) <= admitted <= per_minute + refill + 1
        for gate, runtime in zip(gates, runtimes, strict=True):
            await gate.close()
            runtime.close()

    run(test)


def test_failed_logins_are_counted_and_blocked_over_the_fleet(
    target: PgTarget, tmp_path: Path
) -> None:
    async def test() -> None:
        async with Relay(target, tmp_path / "a") as a, Relay(target, tmp_path / "b") as b:
            ta, tb = a.store.throttle, b.store.throttle
            for throttle in (ta, tb, ta, tb):
                await throttle.fail("198.51.100.7", "u-guessed")
            assert not await ta.blocked("198.51.100.7", "u-guessed")
            assert await tb.fail("198.51.100.7", "u-guessed") == 5  # the fleet's count
            assert await tb.blocked("198.51.100.7", "u-guessed")
            await until(lambda: ("198.51.100.7", "u-guessed") in ta.blocks, 2, "block on a")
            assert await ta.blocked("198.51.100.7", "u-guessed")
            # another username from the same address, and the same one from elsewhere: free
            assert not await ta.blocked("198.51.100.7", "u-real")
            assert not await ta.blocked("198.51.100.8", "u-guessed")
            # what is older than the window is forgotten at a resync: the table stays small
            with psycopg.connect(os.environ["POSTFORM_PG_DSN"], autocommit=True) as conn:
                table = f"{SCHEMA}.relay_login_failures"
                conn.execute(
                    f"INSERT INTO {table} (tenant, peer, username, at) VALUES"
                    " ('production', '203.0.113.1', 'old', extract(epoch from now()) - 700)"
                )
                await ta.resync()
                left = conn.execute(f"SELECT username FROM {table} ORDER BY 1").fetchall()
            assert left == [("*",)] * 5 + [("u-guessed",)] * 5  # the address's, the name's
            assert ("198.51.100.7", "u-guessed") in ta.blocks

    run(test)


def test_an_outage_loses_nothing_and_ends_without_a_restart(
    target: PgTarget, tmp_path: Path, pg_cluster
) -> None:
    limit = 1000  # leases of 10 recipients

    async def test() -> None:
        async with Relay(target, tmp_path / "a") as a, Relay(target, tmp_path / "b") as b:
            gate = LeasedLimits(a.store.runtime, 60000)
            assert await gate.reserve_recipient(limit) is Verdict.ADMIT  # 9 more held
            pg_cluster.stop()
            try:
                await until(lambda: a.events("store_unavailable"), 10, "store_unavailable")
                # learned during the outage: refused here at once, kept in the outbox
                assert a.store.suppressions.hard_bounce("late@example.org", "550 5.1.1", "Q9")
                assert a.store.suppressions.reason("late@example.org") == "HARDBOUNCE"
                assert a.store.outbox.pending() == 1
                assert outbox_count(tmp_path / "a") == 1  # what `relay status` shows
                # a relay stopping now keeps it for its next start, and says so
                assert await a.store.drain(timeout=0.5) == 1
                assert a.events("store_pending")[0]["pending"] == 1
                # what was leased is spent, then 451: never more than it can account for
                held = [await gate.reserve_recipient(limit) for _ in range(9)]
                assert held == [Verdict.ADMIT] * 9
                started = time.monotonic()
                assert await gate.reserve_recipient(limit) is Verdict.UNAVAILABLE
                assert time.monotonic() - started < 1.0  # the breaker answers, no timeout
            finally:
                pg_cluster.start()
            await until(lambda: a.events("store_back"), 15, "store_back")
            await until(lambda: a.store.outbox.pending() == 0, 5, "outbox written")
            await until(
                lambda: b.store.suppressions.reason("late@example.org") == "HARDBOUNCE",
                10,  # b hears of it by NOTIFY, or at its resync after reconnecting
                "b learns what a learned during the outage",
            )
            assert await gate.reserve_recipient(limit) is Verdict.ADMIT
            await gate.close()

    run(test)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def bucket_tokens(dsn: str) -> float:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT tokens FROM {SCHEMA}.relay_buckets WHERE name = 'messages'"
        ).fetchone()
    assert row is not None
    return float(row[0])


def test_sessions_that_find_the_lease_empty_together_take_one_batch(target: PgTarget) -> None:
    per_minute = 6000  # a lease is 60 tokens

    async def test() -> None:
        runtime = PgRuntime(target)
        gate = LeasedLimits(runtime, per_minute)
        verdicts = await asyncio.gather(*(gate.take_message() for _ in range(50)))
        assert verdicts == [Verdict.ADMIT] * 50
        assert gate.messages.tokens == 10  # one batch leased, not fifty
        assert bucket_tokens(os.environ["POSTFORM_PG_DSN"]) < per_minute - 59
        await gate.close()
        runtime.close()

    run(test)


def test_tokens_kept_unspent_go_back_so_the_bucket_cannot_refill_around_them(
    target: PgTarget,
) -> None:
    per_minute, clock = 6000, Clock()

    async def test() -> None:
        runtime = PgRuntime(target)
        gate = LeasedLimits(runtime, per_minute, clock)
        assert await gate.take_message() is Verdict.ADMIT  # 59 held
        dsn = os.environ["POSTFORM_PG_DSN"]
        held = bucket_tokens(dsn)
        clock.now += 6  # an idle relay: what it holds is stale
        assert await gate.take_message() is Verdict.ADMIT
        await asyncio.sleep(0.5)  # the stale tokens are returned in the background
        assert bucket_tokens(dsn) >= held - 1  # 59 back, 60 leased again: about even
        assert gate.messages.tokens == 59
        await gate.close()
        runtime.close()

    run(test)


def test_recipients_released_after_midnight_do_not_count_for_the_new_day(
    target: PgTarget,
) -> None:
    clock = Clock()
    clock.now = (clock.now // 86_400 + 1) * 86_400 - 1.0  # one second before UTC midnight

    async def test() -> None:
        runtime = PgRuntime(target)
        gate = LeasedLimits(runtime, 60000, clock)
        assert await gate.reserve_recipient(250) is Verdict.ADMIT  # holds 1 more for today
        yesterday = gate.day
        clock.now += 2
        assert await gate.reserve_recipient(250) is Verdict.ADMIT  # a new day's lease
        assert gate.day != yesterday and gate.recipients == 1
        gate.release_recipients(1, yesterday)  # a transaction from before midnight failed
        assert gate.recipients == 1  # not added to today's
        gate.release_recipients(1, gate.day)
        assert gate.recipients == 2
        await gate.close()
        runtime.close()

    run(test)


def test_a_locked_row_gets_451_in_seconds_not_a_hang(target: PgTarget) -> None:
    dsn = os.environ["POSTFORM_PG_DSN"]

    async def test() -> None:
        runtime = PgRuntime(target)
        gate = LeasedLimits(runtime, 6000)
        assert await gate.take_message() is Verdict.ADMIT
        gate.messages.tokens = 0
        with psycopg.connect(dsn) as holder:  # another session holds the bucket's row
            holder.execute(f"SELECT * FROM {SCHEMA}.relay_buckets FOR UPDATE")
            started = time.monotonic()
            assert await gate.take_message() is Verdict.UNAVAILABLE
            assert time.monotonic() - started < 3.0
            started = time.monotonic()  # the breaker: the next ones fail at once
            assert await gate.reserve_recipient(1000) is Verdict.UNAVAILABLE
            assert time.monotonic() - started < 0.1
            holder.rollback()
        await asyncio.sleep(2.5)  # the breaker's retry_after
        assert await gate.take_message() is Verdict.ADMIT
        await gate.close()
        runtime.close()

    run(test)


def test_a_bad_operation_in_the_outbox_is_skipped_and_reported_not_blocking(
    target: PgTarget, tmp_path: Path
) -> None:
    async def test() -> None:
        async with Relay(target, tmp_path / "a") as a:
            store = a.store
            store.writer.acquire()
            a.task.cancel() if a.task else None  # flush by hand below
            store.suppressions.hard_bounce("nul@example.org", "550 5.1.1 bad\x00 \udcff", "Q1")
            store.outbox.put({"op": "add", "address": None, "reason": "HARDBOUNCE"})  # a bug
            store.suppressions.hard_bounce("after@example.org", "550 5.1.1 gone", "Q2")
            refused = await store.suppressions.flush()
            assert [op["address"] for op in refused] == [None]
            assert store.outbox.pending() == 0
            direct = DirectStore(target)
            rows = {r.address: r.reply for r in direct.suppressions.list()}
            direct.close()
            assert rows == {
                "nul@example.org": "550 5.1.1 bad ?",
                "after@example.org": "550 5.1.1 gone",
            }

    run(test)


def test_a_malformed_connection_string_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    from relay.pgconnect import DatabaseError, connect

    monkeypatch.setenv("POSTFORM_PG_DSN", "postgresql://relay:s3cr%zz@127.0.0.1/postform")
    with pytest.raises(DatabaseError) as caught:
        connect("POSTFORM_PG_DSN")
    assert "s3cr" not in str(caught.value) and "POSTFORM_PG_DSN" in str(caught.value)


def test_a_users_share_holds_across_the_fleet(target: PgTarget) -> None:
    """Two relays lease one user's share from the same fleet bucket: together they admit
    at most the share; another user is still served, and a release goes back."""

    async def test() -> None:
        runtimes = [PgRuntime(target), PgRuntime(target)]
        gates = [LeasedLimits(r, 6000) for r in runtimes]
        taken = [await gates[i % 2].take_message("flood", 50) for i in range(80)]
        assert taken.count(Verdict.ADMIT) == 50
        assert taken[-1] is Verdict.USER_LIMITED
        assert await gates[0].take_message("other", 50) is Verdict.ADMIT
        gates[1].release_message("flood")
        assert await gates[1].take_message("flood", 50) is Verdict.ADMIT
        for gate in gates:
            await gate.close()
        for runtime in runtimes:
            runtime.close()

    run(test)


def test_the_relays_of_a_fleet_share_one_bounce_key(target: PgTarget, tmp_path: Path) -> None:
    """A bounce may come back to any relay behind the MX: each must verify the VERP MACs
    the others signed, so the first relay's key becomes the fleet's."""
    from relay.verp import Verp, load_key, parse_token

    stores = [PgRelayStore(target, tmp_path / n, EventLog(io.StringIO())) for n in "ab"]
    try:
        keys = [s.bounce_key() for s in stores]
        assert keys[0] == keys[1] == load_key(tmp_path / "a") != load_key(tmp_path / "b")
        sent = Verp(keys[0]).address("0" * 24, "r@example.org", "rp.example.com")
        token = parse_token(sent, {"rp.example.com"})
        assert token is not None and Verp(keys[1]).verify(token, "r@example.org")
    finally:
        for store in stores:
            store.close()
