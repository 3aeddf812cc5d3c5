"""The runtime stores a relay is given: the embedded SQLite store (one relay, no server),
or the shared PostgreSQL store of a fleet (relay.store.backend: postgres)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.auth import FailureTracker
from relay.contract.policy import PolicyError, RelayPolicy
from relay.events import EventLog
from relay.ratelimit import TenancyLimits
from relay.store.interfaces import LimitGate, LoginThrottle, SuppressionList
from relay.store.pgruntime import PgTarget
from relay.store.sqlite import EmbeddedStore
from relay.verp import load_key

LimitsFor = Callable[[RelayPolicy, tuple[int, int]], LimitGate]


@dataclass
class RelayStores:
    suppressions: SuppressionList
    throttle: LoginThrottle
    limits: LimitsFor  # the limit gate for a policy and a (worker, workers) pair
    close: Callable[[], None]
    bounce_key: Callable[[], bytes] = lambda: b""  # the key that signs VERP addresses
    run: Callable[[], Coroutine[Any, Any, None]] | None = None  # a background loop, if needed
    drain: Callable[[], Coroutine[Any, Any, int]] | None = None  # write what is pending

    async def finish(self) -> None:
        """At exit: write what is still pending (bounded), then close."""
        if self.drain is not None:
            await self.drain()
        self.close()

    @classmethod
    def embedded(cls, folder: Path) -> RelayStores:
        store = EmbeddedStore(folder)

        def limits(policy: RelayPolicy, worker: tuple[int, int]) -> LimitGate:
            return TenancyLimits(store.counters, policy.limits.messages_per_minute, worker)

        return cls(
            store.suppressions, FailureTracker(), limits, store.close, lambda: load_key(folder)
        )

    @classmethod
    def shared(
        cls, target: PgTarget, folder: Path, log: EventLog, retention_days: float = 30
    ) -> RelayStores:
        """The fleet's store, and the shipping of this relay's events to the fleet's
        table (relay/store/eventshipper.py): both loops run in `run`, both drain at exit."""
        from relay.store.eventshipper import EventShipper
        from relay.store.pgstore import PgRelayStore

        store = PgRelayStore(target, folder, log)
        shipper = EventShipper(target, folder, log, retention_days=retention_days)

        async def run() -> None:
            await asyncio.gather(store.run(), shipper.run())

        async def drain() -> int:
            pending = await asyncio.gather(store.drain(), shipper.drain())
            return int(pending[0])

        def close() -> None:
            shipper.close()
            store.close()

        return cls(
            store.suppressions, store.throttle, store.limits, close, store.bounce_key, run, drain
        )

    @classmethod
    def for_policy(
        cls, policy: RelayPolicy, folder: Path, log: EventLog, target: PgTarget | None
    ) -> RelayStores:
        if policy.relay.store != "postgres":
            return cls.embedded(folder)
        if target is None:
            raise PolicyError(
                "relay.store is postgres, but the state is not: the shared store uses the "
                "state's database (state.backend: postgres)"
            )
        # The event table's retention as applied when the relay started.
        return cls.shared(target, folder, log, policy.relay.event_retention_days)
