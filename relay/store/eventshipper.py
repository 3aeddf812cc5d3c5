"""A fleet relay's event lines, shipped to the shared table (relay_events) so that trace,
usage and the dashboard see every relay of the fleet from any host.

The event log's tap only appends the record to a bounded buffer on the writer's thread;
a background task ships the buffer every second, with one COPY per batch, on a store
thread and connection of its own (a slow or failing insert never delays the SMTP path's
store calls nor opens their circuit breaker). While PostgreSQL is down the records wait
in the buffer (at most BUFFERED: beyond it they are dropped, counted, and said once a
minute) and ship when it is back; at exit the drain ships what is pending, waiting a
bounded time. Delivery is at least once: a batch whose answer is lost may ship twice.

Shipped: every event except the per-connection noise (connect, disconnect, auth_ok),
which says nothing about a message and would outnumber the events that do. The events
files stay complete, and `--local` reads them.

Rows older than the retention (relay/eventindex.py's, 30 days) are pruned by each relay
about once an hour, oldest first in bounded chunks, under an advisory lock so that two
relays never prune at once.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from relay.eventindex import DEFAULT_RETENTION_DAYS
from relay.events import EventLog
from relay.pgconnect import DatabaseError
from relay.store import pgevents
from relay.store.pgruntime import PgRuntime, PgTarget, StoreRefused

NOT_SHIPPED = frozenset({"connect", "disconnect", "auth_ok"})
BUFFERED = 100_000  # records waiting at most; more are dropped (and counted)
BATCH = 1_000  # records per COPY
INTERVAL = 1.0  # seconds between two shipments
PRUNE_EVERY = 3_600.0  # seconds between two prunes by one relay
DROPS_SAID_EVERY = 60.0  # seconds between two events_dropped lines
T = TypeVar("T")


def relay_host(folder: Path) -> str:
    """What tells this relay from the fleet's others: the host's name and its data folder
    (two relays on one host have two folders; the processes of one folder are one relay)."""
    return f"{socket.gethostname()}:{folder.resolve()}"


class EventShipper:
    def __init__(
        self,
        target: PgTarget,
        folder: Path,
        log: EventLog,
        *,
        retention_days: float = DEFAULT_RETENTION_DAYS,
        buffered: int = BUFFERED,
    ) -> None:
        self.target = target
        self.host = relay_host(folder)
        self.log = log
        self.retention_days = retention_days
        self.buffered = buffered
        self.runtime = PgRuntime(target)
        self.pending: deque[dict[str, Any]] = deque()
        self.dropped = 0  # since the last events_dropped line
        self._drops_said = 0.0
        self._down = False
        self._missing = False
        self._next_prune = 0.0
        self._inflight: asyncio.Future[int | None] | None = None
        log.tap(self.add)

    def add(self, record: dict[str, Any]) -> None:
        """The tap: keep the record for the next shipment (cheap, never raises)."""
        if record.get("event") in NOT_SHIPPED:
            return
        if len(self.pending) >= self.buffered:
            self.dropped += 1
            return
        self.pending.append(record)

    async def run(self) -> None:
        """Ship every second until cancelled; prune when due; say what was dropped."""
        while True:
            await asyncio.sleep(INTERVAL)
            try:
                await self.ship()
                if time.monotonic() >= self._next_prune:
                    await self.prune()
            except DatabaseError as exc:
                if not self._down:
                    self._down = True
                    self.log.emit("events_unavailable", error=str(exc), pending=len(self.pending))
            except Exception as exc:  # a bug must not stop the shipping for good
                self.log.emit("events_error", error=f"{type(exc).__name__}: {exc}")
            self._say_drops()

    async def ship(self) -> int:
        """Ship what is pending, batch after batch; the number of records shipped.
        DatabaseError when the store is down (the records stay pending)."""
        shipped, due = 0, len(self.pending)  # not what shipping itself says meanwhile
        while self.pending and shipped < due:
            # One batch in flight at a time, shielded: cancelled here (the relay stopping),
            # it still takes its records off the buffer when it lands, and the drain
            # waits for it instead of sending its records a second time.
            if self._inflight is None or self._inflight.done():
                self._inflight = asyncio.ensure_future(self._send_batch())
                self._inflight.add_done_callback(_retrieved)
            written = await asyncio.shield(self._inflight)
            if written is None:
                self._table_missing()
                return shipped
            shipped += written
        return shipped

    async def _send_batch(self) -> int | None:
        # by index, not by iterating: the tap may append meanwhile
        batch = [self.pending[i] for i in range(min(BATCH, len(self.pending)))]
        try:
            written = await self.runtime.call(self._writer(batch))
        except StoreRefused:  # a record PostgreSQL will not take: not the whole batch
            written = await self._one_by_one(batch)
        if written is None:
            return None
        for _ in batch:
            self.pending.popleft()
        if self._down or self._missing:
            self._down = self._missing = False
            self.log.emit("events_back", pending=len(self.pending))
        return len(batch)

    def _writer(self, batch: list[dict[str, Any]]) -> Callable[[Any], int | None]:
        tenant, host, schema = self.target.tenant, self.host, self.target.schema

        def write(conn: Any) -> int | None:
            rows = [r for r in (pgevents.row_of(tenant, host, b) for b in batch) if r]
            return _unless_missing(lambda: pgevents.insert(conn, schema, rows))

        return write

    async def _one_by_one(self, batch: list[dict[str, Any]]) -> int | None:
        """A refused batch, record by record: the ones refused are dropped, and said."""
        written, refused, error = 0, 0, ""
        for record in batch:
            try:
                one = await self.runtime.call(self._writer([record]))
            except StoreRefused as exc:
                refused, error = refused + 1, error or str(exc)
                continue
            if one is None:
                return None
            written += one
        if refused:
            self.log.emit("events_refused", refused=refused, error=error)
        return written

    async def prune(self) -> int | None:
        """Delete rows past the retention (a chunk; the next one at the next tick when
        there is more). None when another relay is pruning or the table is missing."""
        target, days = self.target, self.retention_days
        self._next_prune = time.monotonic() + PRUNE_EVERY  # a prune that fails waits too
        deleted = await self.runtime.call(
            lambda c: _unless_missing(lambda: pgevents.prune(c, target.schema, target.tenant, days))
        )
        if deleted is not None and deleted >= pgevents.PRUNE_CHUNK:
            self._next_prune = 0.0  # more to delete: the next chunk at the next tick
        if deleted:
            self.log.emit("events_pruned", rows=deleted, retention_days=days)
        return deleted

    async def drain(self, timeout: float = 5.0) -> int:
        """Ship what is pending before the relay exits, waiting at most `timeout` seconds;
        the number left unshipped (said, with the drops not yet said, as
        `events_unshipped`: those records stay in the event files only)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline and not self._missing:
            try:
                await asyncio.wait_for(self.ship(), max(0.01, deadline - time.monotonic()))
            except (DatabaseError, TimeoutError):
                await asyncio.sleep(0.2)
        left = len(self.pending)
        if left or self.dropped:
            self.log.emit("events_unshipped", pending=left, dropped=self.dropped)
        return left

    def close(self) -> None:
        self.runtime.close()

    def _table_missing(self) -> None:
        if not self._missing:
            self._missing = True
            self.log.emit(
                "events_table_missing",
                detail="the shared store has no relay_events table (or this role may not "
                "use it): run `postform apply` with this version; events wait meanwhile",
                pending=len(self.pending),
            )

    def _say_drops(self) -> None:
        now = time.monotonic()
        if self.dropped and now - self._drops_said >= DROPS_SAID_EVERY:
            dropped, self.dropped, self._drops_said = self.dropped, 0, now
            self.log.emit("events_dropped", dropped=dropped, buffered=self.buffered)


def _retrieved(task: asyncio.Future[Any]) -> None:
    """A batch whose shipment was left behind (a cancelled wait) may fail unobserved: its
    error is taken here, not reported by asyncio as never retrieved."""
    if not task.cancelled():
        task.exception()


def _unless_missing(work: Callable[[], T]) -> T | None:
    """`work()`, or None when the table is not there yet or this role may not use it (a
    control plane not yet upgraded): the records then wait, they are not refused."""
    import psycopg

    try:
        return work()
    except (
        psycopg.errors.InvalidSchemaName,
        psycopg.errors.UndefinedTable,
        psycopg.errors.UndefinedColumn,
        psycopg.errors.InsufficientPrivilege,
    ):
        return None
    except (psycopg.DataError, psycopg.IntegrityError):
        raise  # a record PostgreSQL will not take: refused, that record alone
    except psycopg.Error as exc:
        # A read-only standby after a failover, a server shutting down: the store is not
        # there for writing, so the records wait as in an outage instead of being refused.
        raise DatabaseError(f"the shared store cannot take events now: {exc}") from None
