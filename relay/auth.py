"""SMTP AUTH PLAIN for the relay: decoding, password checks off the event loop with a
cache, and a per-address failure tracker that slows and then blocks password guessing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from relay.contract.passwords import DUMMY_HASH, verify_password
from relay.contract.policy import Credential, RelayPolicy

Clock = Callable[[], float]


def decode_plain(raw: bytes) -> tuple[str, str] | None:
    """RFC 4616 `[authzid] NUL authcid NUL passwd` (already base64-decoded)."""
    try:
        text = raw.decode("utf-8")
    except ValueError:
        return None
    parts = text.split("\0")
    if len(parts) != 3 or not parts[1]:
        return None
    authzid, username, password = parts
    if authzid and authzid != username:
        return None  # no proxy authorisation
    return username, password


_NAME_SALT = secrets.token_bytes(16)  # per process: hashed names correlate in one log


def logged_username(policy: RelayPolicy, username: str) -> str | None:
    """What an event may say of a username a client sent: a credential's own name, else
    a salted hash (it may be a password typed into the wrong field), never the text."""
    if not username:
        return None
    if username in policy.credentials:
        return username
    digest = hmac.new(_NAME_SALT, username.encode(), hashlib.sha256).hexdigest()
    return f"unknown:{digest[:12]}"


@dataclass
class PasswordChecker:
    """Verifies passwords with scrypt in a thread; remembers successes for `ttl` seconds,
    keyed by username and an HMAC of the password under a per-process secret.

    At most `parallel` checks run at once (one per core by default), the rest queue: each
    scrypt check holds 16 MiB (n=2^14, r=8), so a burst of first logins no longer costs
    16 MiB per session, and a check never runs slower than alone for want of a core."""

    ttl: float = 300.0
    clock: Clock = time.monotonic
    parallel: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    _pool: ThreadPoolExecutor | None = None
    _secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _cache: dict[tuple[str, bytes], tuple[str, float]] = field(default_factory=dict)

    async def check(self, policy: RelayPolicy, username: str, password: str) -> Credential | None:
        cred = policy.credentials.get(username)
        tag = hmac.new(self._secret, password.encode(), hashlib.sha256).digest()
        key = (username, tag)
        hit = self._cache.get(key)
        if cred is not None and hit and hit[0] == cred.password_hash and hit[1] > self.clock():
            return cred
        encoded = cred.password_hash if cred else DUMMY_HASH
        if self._pool is None:  # made on first use: never before --workers forks
            self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="password")
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(self._pool, verify_password, password, encoded)
        if not ok or cred is None:
            return None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (cred.password_hash, self.clock() + self.ttl)
        return cred


ANY_USERNAME = "*"  # the key that counts an address's failures over every username


@dataclass
class FailureTracker:
    """The in-memory LoginThrottle (relay/store/interfaces.py): failed logins per client
    address and username within `window` seconds. The first `slow_after` answer at once,
    later ones after `delay` seconds, and from `block_after` on that username is refused
    from that address for `block_for` seconds. Keyed by both, so a guesser behind a NAT or
    a load balancer cannot lock out the other credentials arriving from the same address;
    an address that fails `peer_block_after` times over all usernames is blocked whole
    (a success never resets that count).

    Checks in progress count too (`begin`/`end`): a username's failures plus its checks in
    flight never exceed `block_after`, so parallel guesses cannot outrun the count, and an
    address has at most `max_in_flight` checks at once. A check past either waits for one
    in flight to end (up to `max_wait` seconds): an application that opens 20 sessions at
    once waits a moment, where 100 parallel guesses are held to 5 checks."""

    window: float = 600.0
    slow_after: int = 3
    block_after: int = 5
    block_for: float = 900.0
    delay: float = 1.0
    peer_block_after: int = 50
    max_in_flight: int = 8
    max_wait: float = 10.0
    max_keys: int = 100_000  # bounded memory, whatever usernames a guesser invents
    clock: Clock = time.monotonic
    _failures: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _blocked: dict[tuple[str, str], float] = field(default_factory=dict)
    _in_flight: dict[tuple[str, str], int] = field(default_factory=dict)
    _freed: asyncio.Event = field(default_factory=asyncio.Event)

    async def blocked(self, peer: str, username: str) -> bool:
        return self._is_blocked((peer, username)) or self._is_blocked((peer, ANY_USERNAME))

    def _is_blocked(self, key: tuple[str, str]) -> bool:
        until = self._blocked.get(key)
        if until is None:
            return False
        if until <= self.clock():
            del self._blocked[key]
            return False
        return True

    async def begin(self, peer: str, username: str) -> bool:
        """Start a password check, waiting for room; False when the username is blocked
        meanwhile or no room came within `max_wait`."""
        key, whole = (peer, username), (peer, ANY_USERNAME)
        deadline = time.monotonic() + self.max_wait
        while True:
            now = self.clock()
            failed = sum(1 for t in self._failures.get(key, ()) if t > now - self.window)
            if failed >= self.block_after or await self.blocked(peer, username):
                return False
            if (
                failed + self._in_flight.get(key, 0) < self.block_after
                and self._in_flight.get(whole, 0) < self.max_in_flight
            ):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), left)
        for k in (key, whole):
            self._in_flight[k] = self._in_flight.get(k, 0) + 1
        return True

    def end(self, peer: str, username: str) -> None:
        for k in ((peer, username), (peer, ANY_USERNAME)):
            left = self._in_flight.get(k, 0) - 1
            if left > 0:
                self._in_flight[k] = left
            else:
                self._in_flight.pop(k, None)
        self._freed.set()  # wake the waiters; they look again
        self._freed = asyncio.Event()

    async def fail(self, peer: str, username: str) -> int:
        """Record a failure; returns how many fall in the window."""
        now = self.clock()
        if len(self._failures) >= self.max_keys:
            self._prune(now)
        whole = self._count((peer, ANY_USERNAME), now)
        if whole >= self.peer_block_after:
            self._blocked[(peer, ANY_USERNAME)] = now + self.block_for
        count = self._count((peer, username), now)
        if count >= self.block_after:
            self._blocked[(peer, username)] = now + self.block_for
        return count

    def _count(self, key: tuple[str, str], now: float) -> int:
        recent = [t for t in self._failures.get(key, []) if t > now - self.window]
        recent.append(now)
        self._failures[key] = recent
        return len(recent)

    def _prune(self, now: float) -> None:
        self._failures = {
            k: v for k, v in self._failures.items() if v and v[-1] > now - self.window
        }
        if len(self._failures) >= self.max_keys:  # still full: the oldest half goes
            ordered = sorted(self._failures.items(), key=lambda kv: kv[1][-1])
            self._failures = dict(ordered[len(ordered) // 2 :])

    def pause_for(self, count: int) -> float:
        return self.delay if count > self.slow_after else 0.0

    async def succeed(self, peer: str, username: str) -> None:
        self._failures.pop((peer, username), None)
