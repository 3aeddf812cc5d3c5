"""messages_per_minute and recipients_per_day for a fleet: a relay leases tokens from the
shared store in batches and spends them locally, so the hot path touches no shared row
per message, and the fleet never admits more than the limits (every admitted message and
recipient was leased). A relay may hold up to one batch it has not used: it gives it
back at shutdown; a relay that crashes loses it, so the fleet admits less, never more.

When the store cannot be reached a relay spends what it holds, then answers
UNAVAILABLE (451 4.3.0): it never admits what it cannot account for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from relay.pgconnect import DatabaseError
from relay.ratelimit import utc_day
from relay.store import pglimits
from relay.store.interfaces import Verdict
from relay.store.pgruntime import PgRuntime

Clock = Callable[[], float]


def batch_for(limit: int) -> int:
    """One lease: about 1 % of the limit, between 1 and 100."""
    return max(1, min(100, limit // 100))


TOKEN_TTL = 5.0  # seconds a relay keeps leased tokens it has not spent: then back


class TokenLease:
    """Tokens of one fleet bucket (`name`) this relay has leased and not spent."""

    def __init__(self, runtime: PgRuntime, name: str, per_minute: int, clock: Clock) -> None:
        self.runtime, self.name, self.per_minute, self.clock = runtime, name, per_minute, clock
        self.tokens = 0
        self.leased_at = 0.0
        # One lease in flight at a time: sessions that find the lease empty together wait
        # for one batch instead of each taking one (a relay holds at most one batch).
        self._leasing = asyncio.Lock()
        self._returns: set[asyncio.Task[None]] = set()

    async def take(self) -> Verdict:
        if self.tokens >= 1 and self.clock() - self.leased_at > TOKEN_TTL:
            self.give_back()  # stale: the bucket must not refill around them
        if self.tokens < 1:
            async with self._leasing:
                if self.tokens < 1:
                    verdict = await self._lease()
                    if verdict is not Verdict.ADMIT:
                        return verdict
        self.tokens -= 1
        return Verdict.ADMIT

    async def _lease(self) -> Verdict:
        target, per_minute, name = self.runtime.target, self.per_minute, self.name
        wanted = batch_for(per_minute)
        try:
            granted = await self.runtime.call(
                lambda c: pglimits.lease_tokens(
                    c, target.schema, target.tenant, per_minute, wanted, name
                )
            )
        except DatabaseError:
            return Verdict.UNAVAILABLE
        self.tokens += granted
        self.leased_at = self.clock()
        return Verdict.ADMIT if self.tokens >= 1 else Verdict.LIMITED

    def give_back(self) -> None:
        """Return what is held to the fleet's bucket, in the background."""
        count, target, per_minute, name = (
            self.tokens,
            self.runtime.target,
            self.per_minute,
            self.name,
        )
        self.tokens = 0
        if count <= 0:
            return

        async def give_back() -> None:
            with contextlib.suppress(DatabaseError):  # if it fails, the fleet admits less
                await self.runtime.call(
                    lambda c: pglimits.return_tokens(
                        c, target.schema, target.tenant, per_minute, count, name
                    )
                )

        task = asyncio.ensure_future(give_back())
        self._returns.add(task)
        task.add_done_callback(self._returns.discard)

    def return_now(self, conn: Any) -> None:
        """At shutdown, on the store connection: give back what is held."""
        count, self.tokens = self.tokens, 0
        if count > 0:
            target = self.runtime.target
            pglimits.return_tokens(
                conn, target.schema, target.tenant, self.per_minute, count, self.name
            )

    async def settle(self) -> None:
        if self._returns:
            await asyncio.wait(set(self._returns), timeout=5)


class LeasedLimits:
    def __init__(self, runtime: PgRuntime, per_minute: int, clock: Clock = time.time) -> None:
        self.runtime = runtime
        self.clock = clock
        self.messages = TokenLease(runtime, "messages", per_minute, clock)
        self.users: dict[str, TokenLease] = {}  # each user's share, a fleet bucket of its own
        self.recipients = 0  # recipients leased for `self.day` and not yet reserved
        self.day = utc_day(clock())
        self._leasing = asyncio.Lock()

    @property
    def per_minute(self) -> int:
        return self.messages.per_minute

    def set_rate(self, per_minute: int) -> None:
        self.messages.per_minute = per_minute

    async def take_message(self, user: str = "", user_limit: int | None = None) -> Verdict:
        share = self._user_lease(user, user_limit)
        if share is not None:
            verdict = await share.take()
            if verdict is not Verdict.ADMIT:
                return Verdict.USER_LIMITED if verdict is Verdict.LIMITED else verdict
        verdict = await self.messages.take()
        if verdict is not Verdict.ADMIT and share is not None:
            share.tokens += 1
        return verdict

    def _user_lease(self, user: str, user_limit: int | None) -> TokenLease | None:
        if user_limit is None:
            return None
        lease = self.users.get(user)
        if lease is None:
            lease = self.users[user] = TokenLease(
                self.runtime, f"messages/user/{user}", user_limit, self.clock
            )
        lease.per_minute = user_limit
        return lease

    def release_message(self, user: str = "") -> None:
        """Back to this relay's lease (returned within TOKEN_TTL or at shutdown)."""
        self.messages.tokens += 1
        share = self.users.get(user)
        if share is not None:
            share.tokens += 1

    async def reserve_recipient(self, limit: int) -> Verdict:
        self._roll()
        if self.recipients < 1:
            async with self._leasing:
                self._roll()
                if self.recipients < 1:
                    verdict = await self._lease_recipients(limit)
                    if verdict is not Verdict.ADMIT:
                        return verdict
        self.recipients -= 1
        return Verdict.ADMIT

    def _roll(self) -> None:
        today = utc_day(self.clock())
        if today != self.day:  # what was leased for yesterday is of no use now
            self.day, self.recipients = today, 0

    async def _lease_recipients(self, limit: int) -> Verdict:
        target, day, wanted = self.runtime.target, self.day, batch_for(limit)
        try:
            granted = await self.runtime.call(
                lambda c: pglimits.lease_recipients(
                    c, target.schema, target.tenant, day, limit, wanted
                )
            )
        except DatabaseError:
            return Verdict.UNAVAILABLE
        if day == self.day:
            self.recipients += granted
        return Verdict.ADMIT if self.recipients >= 1 else Verdict.LIMITED

    def release_recipients(self, count: int, day: str) -> None:
        """Back to this relay's lease (returned at shutdown); a release for a day that
        has ended is dropped: yesterday's lease is of no use today."""
        self._roll()
        if day == self.day:
            self.recipients += count

    def flush(self) -> None:
        """Nothing to save: every admission was leased from the store already."""

    async def close(self) -> None:
        target, recipients, day = self.runtime.target, self.recipients, self.day
        self.recipients = 0
        leases = [self.messages, *self.users.values()]

        def give_back(conn: Any) -> None:
            for lease in leases:
                lease.return_now(conn)
            if recipients:
                pglimits.return_recipients(conn, target.schema, target.tenant, day, recipients)

        # If the store is away, what was leased is kept by nobody: the fleet admits that
        # much less today, never more.
        with contextlib.suppress(DatabaseError):
            await self.runtime.call(give_back)
        for lease in leases:
            await lease.settle()
