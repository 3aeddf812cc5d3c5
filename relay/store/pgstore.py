"""The shared store of a fleet (relay.store.backend: postgres), as one relay uses it: the
suppression mirror and outbox, the shared throttle, leased limits, and the background
loop that keeps them in step with PostgreSQL and rides out its outages."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path

from relay.contract.policy import RelayPolicy
from relay.events import EventLog
from relay.pgconnect import DatabaseError
from relay.store import pgsql
from relay.store.interfaces import LimitGate
from relay.store.leases import LeasedLimits
from relay.store.outbox import Outbox
from relay.store.pgruntime import PgRuntime, PgTarget
from relay.store.shared_suppressions import SharedSuppressionList
from relay.store.shared_throttle import SharedThrottle
from relay.store.sqlite import EmbeddedStore
from relay.verp import load_key

TICK = 0.2  # seconds between two looks at notifications and the outbox
RESYNC = 60.0  # seconds between two full reloads of the suppression mirror


class FlushLock:
    """Which process of a data folder writes its outbox: the one holding this flock
    (released by the kernel when it exits, so another takes over)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PgRelayStore:
    def __init__(self, target: PgTarget, folder: Path, log: EventLog) -> None:
        self.folder = folder
        self.writer = FlushLock(folder / "outbox.lock")
        self.local = EmbeddedStore(folder)
        self.runtime = PgRuntime(target)
        self.outbox = Outbox(self.local.db)
        self.suppressions = SharedSuppressionList(
            self.runtime, self.local.suppressions, self.outbox
        )
        self.throttle = SharedThrottle(self.runtime)
        self.log = log
        self._down = False

    def bounce_key(self) -> bytes:
        """The fleet's bounce key, so a bounce may come back to any relay: the first
        relay's key, stored in the shared store. While the store cannot be reached (or
        the control plane has not yet made the table), this relay's own key, said once."""
        local = load_key(self.folder)
        target = self.runtime.target
        try:
            return self.runtime.call_now(
                lambda c: pgsql.shared_key(c, target.schema, target.tenant, "bounce", local)
            )
        except DatabaseError as exc:
            self.log.emit("bounce_key_local", error=str(exc))
            return local

    def limits(self, policy: RelayPolicy, worker: tuple[int, int]) -> LimitGate:
        return LeasedLimits(self.runtime, policy.limits.messages_per_minute)

    async def run(self) -> None:
        """Follow the store until cancelled: notifications in, outbox out, a full resync
        every minute and whenever the store comes back. Nothing escapes this loop: an
        unexpected error is logged and the next tick tries again."""
        resynced = 0.0
        while True:
            try:
                if not self.runtime.listening():
                    await self.runtime.listen()
                    resynced = 0.0
                for note in self.runtime.notifications():
                    self.suppressions.notified(note)
                    self.throttle.notified(note)
                await self._flush()
                if time.monotonic() - resynced > RESYNC:
                    await self.suppressions.resync()
                    await self.throttle.resync()
                    resynced = time.monotonic()
                if self._down:
                    self._down = False
                    self.log.emit("store_back", pending=self.outbox.pending())
            except DatabaseError as exc:
                if not self._down:
                    self._down = True
                    self.log.emit("store_unavailable", error=str(exc))
            except Exception as exc:  # a bug must not stop the fleet's store for this relay
                self.log.emit("store_error", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(TICK)

    async def _flush(self) -> None:
        """Write the outbox, if this process is the folder's writer (several processes may
        share one folder: --workers, or `relay deliver` beside `serve --no-delivery`)."""
        if not self.writer.acquire():
            return
        for op in await self.suppressions.flush():
            self.log.emit("store_refused", op=op.get("op"), recipient=op.get("address"))

    async def drain(self, timeout: float = 5.0) -> int:
        """Write the outbox before the relay exits (waiting at most `timeout` seconds);
        what could not be written stays in the local outbox for the next start, and
        the `store_pending` event says how much (a host being retired must not lose it).
        Another process of this folder that writes the outbox does it instead."""
        if not self.writer.acquire():
            return 0
        deadline = time.monotonic() + timeout
        while self.outbox.pending() and time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self._flush(), deadline - time.monotonic())
            except (DatabaseError, TimeoutError):
                await asyncio.sleep(0.2)
        pending = self.outbox.pending()
        if pending:
            self.log.emit("store_pending", pending=pending, folder=str(self.folder))
        return pending

    def close(self) -> None:
        self.runtime.close()
        self.writer.release()
        self.local.close()
