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
CALL_TIMEOUT = 2.0  # seconds a call may take before the store counts as down
MAX_QUEUED = 64  # calls waiting for the store thread; more fail at once
# Every store connection: TCP keepalives and a user timeout, so a dead peer is noticed in
# seconds, not hours; server-side timeouts, so no statement or lock wait outlives a
# call, and a relay that dies inside a transaction cannot hold a row lock for the fleet.
SESSION = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 9000,
    "options": "-c statement_timeout=2000 -c lock_timeout=1500"
    " -c idle_in_transaction_session_timeout=10000",
}


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
        self._queued = 0
        self.available = False

    async def call(self, work: Callable[[Any], T]) -> T:
        """Run `work(connection)` on the store thread; DatabaseError when the store is
        down, slow (CALL_TIMEOUT) or has too many calls waiting: never a long wait."""
        if time.monotonic() < self._down_until:
            raise DatabaseError("the shared store is unavailable (retrying)")
        if self._queued >= MAX_QUEUED:
            raise DatabaseError("the shared store is too slow: too many calls waiting")
        loop = asyncio.get_running_loop()
        self._queued += 1
        future = loop.run_in_executor(self._pool, self._run, work)
        try:
            return await asyncio.wait_for(asyncio.shield(future), CALL_TIMEOUT)
        except TimeoutError:
            self._down_until = time.monotonic() + self.retry_after  # later calls fail fast
            self.available = False
            raise DatabaseError(f"the shared store did not answer in {CALL_TIMEOUT:g} s") from None
        finally:
            self._queued -= 1

    def call_now(self, work: Callable[[Any], T]) -> T:
        """`call` for the start of a relay, before its event loop runs (bounded wait)."""
        try:
            return self._pool.submit(self._run, work).result(timeout=CALL_TIMEOUT)
        except TimeoutError:
            raise DatabaseError(f"the shared store did not answer in {CALL_TIMEOUT:g} s") from None

    def _run(self, work: Callable[[Any], T]) -> T:
        import psycopg

        if time.monotonic() < self._down_until:  # queued before the store went down
            raise DatabaseError("the shared store is unavailable (retrying)")
        try:
            if self._conn is None or self._conn.closed:
                self._conn = _connect(self.target, "postform relay store")
            result = work(self._conn)
        except (psycopg.OperationalError, psycopg.InterfaceError, DatabaseError) as exc:
            self._fail()  # the connection or the server: an outage
            raise DatabaseError(f"the shared store failed: {_why(exc)}") from None
        except psycopg.Error as exc:  # the data or the query: the store itself is fine
            raise StoreRefused(f"the shared store refused it: {_why(exc)}") from None
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
            with contextlib.suppress(Exception):
                self._listen.close()
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


class StoreRefused(DatabaseError):
    """PostgreSQL answered, and refused one operation (bad data): not an outage."""


def _connect(target: PgTarget, purpose: str) -> Any:
    return connect(
        target.dsn_env,
        autocommit=True,
        purpose=purpose,
        timeout=STORE_CONNECT_TIMEOUT,
        extra=SESSION,
    )


def _why(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
