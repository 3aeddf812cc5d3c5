"""How a relay talks to the shared store: every query runs on one store thread with its
own connection, so the event loop never waits on the network; notifications arrive on a
second connection that is drained without blocking.

When PostgreSQL cannot be reached, calls fail at once for `retry_after` seconds (a circuit
breaker) instead of each waiting out a connect timeout: the SMTP path answers from what
the relay holds locally (cached suppressions, leased tokens) and says 451 4.3.0 when that
runs out. `available` tells the relay's background loop when to reconnect and catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from relay.pgconnect import DatabaseError, connect
from relay.store.pgnames import RELAY_CHANNEL

T = TypeVar("T")
STORE_CONNECT_TIMEOUT = 3  # seconds: a relay never waits long for its store


@dataclass(frozen=True)
class PgTarget:
    """Where a relay's shared store is: the state's database settings and its name."""

    dsn_env: str | None
    schema: str
    tenant: str


class PgRuntime:
    def __init__(self, target: PgTarget, retry_after: float = 2.0) -> None:
        self.target = target
        self.retry_after = retry_after
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postform-store")
        self._conn: Any = None  # used on the store thread only
        self._listen: Any = None  # used on the event loop only, never blocking
        self._down_until = 0.0
        self.available = False

    async def call(self, work: Callable[[Any], T]) -> T:
        """Run `work(connection)` on the store thread; DatabaseError when the store is down."""
        if time.monotonic() < self._down_until:
            raise DatabaseError("the shared store is unavailable (retrying)")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, work)

    def call_sync(self, work: Callable[[Any], T]) -> T:
        """The same, from outside the event loop (start-up and shutdown)."""
        return self._pool.submit(self._run, work).result()

    def _run(self, work: Callable[[Any], T]) -> T:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn = _connect(self.target, "postform relay store")
            result = work(self._conn)
        except (psycopg.Error, DatabaseError) as exc:
            self._fail()
            raise DatabaseError(f"the shared store failed: {_why(exc)}") from None
        self.available = True
        return result

    def _fail(self) -> None:
        self.available = False
        self._down_until = time.monotonic() + self.retry_after
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def notifications(self) -> list[dict[str, Any]]:
        """Notifications for this tenant received since the last call (never blocks)."""
        import psycopg

        if self._listen is None or self._listen.closed:
            return []
        try:
            notes = list(self._listen.notifies(timeout=0))
        except psycopg.Error:
            self._listen = None
            return []
        out = []
        for note in notes:
            try:
                payload = json.loads(note.payload)
            except ValueError:
                continue
            if isinstance(payload, dict) and payload.get("t") == self.target.tenant:
                out.append(payload)
        return out

    def listening(self) -> bool:
        return self._listen is not None and not self._listen.closed

    async def listen(self) -> None:
        """(Re)open the LISTEN connection, on the store thread (connecting may wait)."""
        from psycopg import sql

        def open_listen(_: Any) -> Any:
            conn = _connect(self.target, "postform relay listen")
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(RELAY_CHANNEL)))
            return conn

        self._listen = await self.call(open_listen)

    def close(self) -> None:
        for conn in (self._listen, self._conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self._pool.shutdown(wait=False)


def _connect(target: PgTarget, purpose: str) -> Any:
    return connect(target.dsn_env, autocommit=True, purpose=purpose, timeout=STORE_CONNECT_TIMEOUT)


def _why(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
