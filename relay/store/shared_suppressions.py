"""One suppression list for a fleet: the RCPT path reads a local mirror (the relay's SQLite
file, indexed, never a network round trip), kept current by the store's notifications
and a full resynchronisation every minute and after an outage. What this relay learns is
written to the mirror at once (it refuses the address itself immediately) and to the
shared store in order through the outbox, now or when the store is back."""

from __future__ import annotations

import asyncio
from typing import Any

from relay.contract.suppression import SuppressionReason, suppression_key
from relay.store import pgsql
from relay.store.interfaces import Suppression
from relay.store.outbox import Outbox
from relay.store.pgruntime import PgRuntime
from relay.store.sqlite import SqliteSuppressionList

Ops = list[dict[str, Any]]  # outbox operations (the class below has a method named list)


class SharedSuppressionList:
    def __init__(self, runtime: PgRuntime, local: SqliteSuppressionList, outbox: Outbox) -> None:
        self.runtime = runtime
        self.local = local
        self.outbox = outbox
        # The batch being written, if any: a flush cancelled mid-way (shutdown) leaves it
        # running, and the next flush waits for it instead of writing it again.
        self._inflight: tuple[asyncio.Future[Ops], int] | None = None

    # the SuppressionList protocol: read the mirror, write both

    def reason(self, address: str) -> str | None:
        return self.local.reason(address)

    def add(
        self,
        address: str,
        reason: str,
        *,
        reply: str | None = None,
        queue_id: str | None = None,
        note: str | None = None,
    ) -> bool:
        added = self.local.add(address, reason, reply=reply, queue_id=queue_id, note=note)
        if added:
            self.outbox.put(
                {"op": "add", "address": address, "reason": str(reason), "reply": reply,
                 "queue_id": queue_id, "note": note}
            )  # fmt: skip
        return added

    def remove(self, address: str, why: str) -> Suppression | None:
        self.outbox.put({"op": "remove", "address": address, "why": why})
        return self.local.remove(address, why)

    def get(self, address: str) -> Suppression | None:
        return self.local.get(address)

    def list(self, reason: str | None = None) -> list[Suppression]:
        return self.local.list(reason)

    def count(self) -> int:
        return self.local.count()

    def hard_bounce(self, address: str, reply: str, queue_id: str) -> bool:
        return self.add(address, SuppressionReason.HARDBOUNCE, reply=reply, queue_id=queue_id)

    def soft_bounce(self, address: str, reply: str, queue_id: str) -> tuple[int, bool]:
        """Counted here at once; the fleet's count (and its suppression at 4) is the store's."""
        self.outbox.put({"op": "soft", "address": address, "reply": reply, "queue_id": queue_id})
        return self.local.soft_bounce(address, reply, queue_id)

    def delivered(self, address: str) -> None:
        self.local.delivered(address)
        self.outbox.put({"op": "delivered", "address": address})

    def soft_count(self, address: str) -> int:
        return self.local.soft_count(address)

    # keeping the mirror and the store in step

    def notified(self, payload: dict[str, Any]) -> None:
        if payload.get("k") == "sup":
            self.local.mirror_add(str(payload["address"]), str(payload["reason"]))
        elif payload.get("k") == "unsup":
            self.local.mirror_remove(str(payload["key"]))

    async def flush(self) -> Ops:
        """Write the outbox to the store, in order; the operations it refused (bad data,
        dropped so that they cannot block the rest). DatabaseError when the store is away."""
        if self._inflight is None:
            batch = self.outbox.peek()
            if not batch:
                return []
            target, ops = self.runtime.target, [op for _, op in batch]
            started = asyncio.ensure_future(
                self.runtime.call(lambda conn: _write(conn, target, ops))
            )
            self._inflight = (started, batch[-1][0])
        work, upto = self._inflight
        try:
            refused = await asyncio.shield(work)
        finally:
            if work.done():
                self._inflight = None
        self.outbox.done(upto)
        return refused

    async def resync(self) -> None:
        """Replace the mirror with the store's list (what is still in the outbox stays)."""
        target = self.runtime.target

        def fetch(conn: Any) -> tuple[list[Suppression], dict[str, int]]:
            rows = pgsql.suppressions(conn, target.schema, target.tenant)
            return rows, pgsql.soft_counts(conn, target.schema, target.tenant)

        rows, soft = await self.runtime.call(fetch)
        self.local.mirror_replace(rows, soft)
        for _, op in self.outbox.peek(None):  # not written yet: still true here
            if op["op"] == "add":
                self.local.mirror_add(op["address"], op["reason"])
            elif op["op"] == "remove":
                self.local.mirror_remove(suppression_key(op["address"]))


def _write(conn: Any, target: Any, ops: Ops) -> Ops:
    """One transaction; each operation in its own savepoint, so one that the store
    refuses is skipped (and reported) while the others are written."""
    import psycopg

    refused: Ops = []
    with conn.transaction():
        delivered = [op["address"] for op in ops if op["op"] == "delivered"]
        for op in ops:
            if op["op"] == "delivered":
                continue
            try:
                with conn.transaction():
                    _apply(conn, target.schema, target.tenant, op)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                raise  # the connection: an outage, the whole batch waits
            except Exception:  # this operation's data: skipped, reported, never blocking
                refused.append(op)
        if delivered:
            pgsql.delivered(conn, target.schema, target.tenant, delivered)
    return refused


def _apply(conn: Any, schema: str, tenant: str, op: dict[str, Any]) -> None:
    if op["op"] == "add":
        pgsql.add_suppression(
            conn, schema, tenant, op["address"], op["reason"],
            reply=op.get("reply"), queue_id=op.get("queue_id"), note=op.get("note"),
        )  # fmt: skip
    elif op["op"] == "remove":
        pgsql.remove_suppression(conn, schema, tenant, op["address"], op["why"])
    elif op["op"] == "soft":
        pgsql.soft_bounce(conn, schema, tenant, op["address"], op["reply"], op["queue_id"])
