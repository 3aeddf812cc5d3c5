"""What the relay and its delivery worker need from runtime storage.

Implementations answer the hot-path questions (`SuppressionList.reason`,
`LoginThrottle.blocked`) from local data (an index or memory), never with a
network round trip; SQL stays portable (ON CONFLICT, lower-cased keys) so a
PostgreSQL implementation can mirror it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol


@dataclass(frozen=True)
class Suppression:
    address: str
    reason: str
    created: float
    reply: str | None = None
    queue_id: str | None = None
    note: str | None = None


class SuppressionList(Protocol):
    """Addresses the relay refuses at RCPT, compared without case (OCI's rule feeds it:
    one hard bounce, or SOFT_BOUNCE_LIMIT soft-bounced messages)."""

    def reason(self, address: str) -> str | None: ...

    def add(
        self,
        address: str,
        reason: str,
        *,
        reply: str | None = None,
        queue_id: str | None = None,
        note: str | None = None,
    ) -> bool:
        """False when the address was already suppressed (the first reason stays)."""
        ...

    def remove(self, address: str, why: str) -> Suppression | None: ...

    def get(self, address: str) -> Suppression | None: ...

    def list(self, reason: str | None = None) -> list[Suppression]: ...

    def count(self) -> int: ...

    def hard_bounce(self, address: str, reply: str, queue_id: str) -> bool: ...

    def soft_bounce(self, address: str, reply: str, queue_id: str) -> tuple[int, bool]:
        """Count one soft-bounced message: (count, whether the address is now suppressed)."""
        ...

    def delivered(self, address: str) -> None:
        """A delivery succeeded: the soft-bounce count starts again."""
        ...

    def soft_count(self, address: str) -> int: ...


class CounterStore(Protocol):
    """Where the limit counters are saved, so limits survive restarts (and are shared
    by the worker processes of one relay)."""

    def day_count(self, day: str) -> int: ...

    def add_day(self, day: str, n: int) -> int:
        """Add `n` recipients to `day`; returns the total all writers have added."""
        ...

    def load_bucket(self, name: str) -> tuple[float, float] | None: ...

    def save_bucket(self, name: str, tokens: float, updated: float) -> None: ...


class LoginThrottle(Protocol):
    """Failed logins per client address and username: slowed, then blocked for a while.
    Async: a fleet's throttle counts in a shared store."""

    async def blocked(self, peer: str, username: str) -> bool:
        """Whether this username, or every username, is blocked from `peer`."""
        ...

    async def begin(self, peer: str, username: str) -> bool:
        """Count a password check in progress (end() when done), waiting for room;
        False: blocked, or no room in time."""
        ...

    def end(self, peer: str, username: str) -> None: ...

    async def fail(self, peer: str, username: str) -> int:
        """Record a failure; returns how many fall in the window."""
        ...

    def pause_for(self, count: int) -> float: ...

    async def succeed(self, peer: str, username: str) -> None: ...


class Verdict(Enum):
    ADMIT = "admit"
    LIMITED = "limited"  # the limit is reached: 451/452 4.7.1, the client retries later
    USER_LIMITED = "user_limited"  # this user's share of the rate is used: 451 4.7.1
    UNAVAILABLE = "unavailable"  # the shared store cannot account for it now: 451 4.3.0


class LimitGate(Protocol):
    """messages_per_minute and recipients_per_day as a relay enforces them. A recipient is
    counted when RCPT accepts it (reserved) and released if its transaction does not end
    in a 250, so a day's count is exact; a fleet's implementation leases in batches from
    a shared store and never admits what it cannot account for.

    A message is reserved at MAIL, from the user's share of the rate (`user_limit` a
    minute; None: no share) and from the tenancy's, and released if its transaction does
    not end in a 250: only accepted messages count."""

    async def take_message(self, user: str = "", user_limit: int | None = None) -> Verdict: ...

    def release_message(self, user: str = "") -> None:
        """Give back a message reserved by take_message for `user`."""
        ...

    @property
    def day(self) -> str:
        """The UTC day reservations count against now (read it right after an ADMIT)."""
        ...

    async def reserve_recipient(self, limit: int) -> Verdict: ...

    def release_recipients(self, count: int, day: str) -> None:
        """Give back `count` recipients reserved on `day`; a day that has ended keeps them."""
        ...

    def set_rate(self, per_minute: int) -> None: ...

    def flush(self) -> None:
        """Save what must survive a restart (called every second and at shutdown)."""
        ...

    async def close(self) -> None:
        """Give back what was leased and not used."""
        ...
