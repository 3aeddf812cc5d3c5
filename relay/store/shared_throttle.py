"""The login throttle of a fleet: failures per client address and username are counted in
the shared store, so a guesser who spreads attempts over the relays is slowed and blocked
on every one of them, and a block set by one relay reaches the others by notification.
While the store is away, each relay still slows and blocks on what it sees itself."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from relay.auth import ANY_USERNAME, FailureTracker
from relay.pgconnect import DatabaseError
from relay.store import pgsql
from relay.store.pgruntime import PgRuntime


class SharedThrottle:
    def __init__(self, runtime: PgRuntime, local: FailureTracker | None = None) -> None:
        self.runtime = runtime
        self.local = local or FailureTracker()
        self.blocks: dict[tuple[str, str], float] = {}  # (peer, username) -> until (epoch)

    async def blocked(self, peer: str, username: str) -> bool:
        for key in ((peer, username), (peer, ANY_USERNAME)):
            until = self.blocks.get(key)
            if until is not None:
                if until > time.time():
                    return True
                del self.blocks[key]
        return await self.local.blocked(peer, username)

    async def begin(self, peer: str, username: str) -> bool:
        return await self.local.begin(peer, username)

    def end(self, peer: str, username: str) -> None:
        self.local.end(peer, username)

    async def fail(self, peer: str, username: str) -> int:
        counted = await self.local.fail(peer, username)
        target, local = self.runtime.target, self.local

        def record(conn: Any) -> tuple[int, float | None, float | None]:
            _, whole = pgsql.login_failed(
                conn, target.schema, target.tenant, peer, ANY_USERNAME,
                local.window, local.peer_block_after, local.block_for,
            )  # fmt: skip
            count, until = pgsql.login_failed(
                conn, target.schema, target.tenant, peer, username,
                local.window, local.block_after, local.block_for,
            )  # fmt: skip
            return count, until, whole

        try:
            count, until, whole = await self.runtime.call(record)
        except DatabaseError:
            return counted  # the store is away: this relay's own count still slows and blocks
        if until is not None:
            self.blocks[(peer, username)] = until
        if whole is not None:
            self.blocks[(peer, ANY_USERNAME)] = whole
        return max(count, counted)

    def pause_for(self, count: int) -> float:
        return self.local.pause_for(count)

    async def succeed(self, peer: str, username: str) -> None:
        await self.local.succeed(peer, username)
        target = self.runtime.target
        with contextlib.suppress(DatabaseError):
            await self.runtime.call(
                lambda conn: pgsql.login_succeeded(
                    conn, target.schema, target.tenant, peer, username
                )
            )

    def notified(self, payload: dict[str, Any]) -> None:
        if payload.get("k") == "block":
            key = (str(payload["peer"]), str(payload["username"]))
            self.blocks[key] = float(payload["until"])

    async def resync(self) -> None:
        target, window = self.runtime.target, self.local.window

        def blocks(conn: Any) -> dict[tuple[str, str], float]:
            pgsql.prune_logins(conn, target.schema, target.tenant, window)
            return pgsql.login_blocks(conn, target.schema, target.tenant)

        self.blocks = await self.runtime.call(blocks)
