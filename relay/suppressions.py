"""The runtime suppression list, learned from bounces (OCI's rule), in the relay's SQLite.

One hard bounce suppresses an address at once; four soft bounces (four messages whose
delivery to it ended as a soft bounce) suppress it; a successful delivery resets the
soft-bounce count. Entries declared in the YAML are plan resources and live in the
policy, not here; nothing here is ever deleted by `plan` or `apply`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from relay.sqlite import open_db

REASONS = ("HARDBOUNCE", "SOFTBOUNCE", "MANUAL", "COMPLAINT", "UNSUBSCRIBE", "UNKNOWN")
SOFT_BOUNCE_LIMIT = 4

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    address TEXT PRIMARY KEY, reason TEXT NOT NULL, created REAL NOT NULL,
    reply TEXT, queue_id TEXT, note TEXT);
CREATE TABLE IF NOT EXISTS soft_bounces (
    address TEXT PRIMARY KEY, count INTEGER NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS suppression_audit (
    time REAL NOT NULL, action TEXT NOT NULL, address TEXT NOT NULL, reason TEXT, note TEXT);
"""


@dataclass(frozen=True)
class Suppression:
    address: str
    reason: str
    created: float
    reply: str | None = None
    queue_id: str | None = None
    note: str | None = None


class SuppressionStore:
    def __init__(self, path: Path, clock: object = time.time) -> None:
        self.db = open_db(path, _SCHEMA)
        self.clock = clock

    def reason(self, address: str) -> str | None:
        row = self.db.execute(
            "SELECT reason FROM suppressions WHERE address = ? COLLATE NOCASE", (address,)
        ).fetchone()
        return row[0] if row else None

    def add(
        self,
        address: str,
        reason: str,
        *,
        reply: str | None = None,
        queue_id: str | None = None,
        note: str | None = None,
    ) -> bool:
        """Suppress `address`; False when it already was (the first reason stays)."""
        now = self.clock()  # type: ignore[operator]
        cur = self.db.execute(
            "INSERT OR IGNORE INTO suppressions (address, reason, created, reply, queue_id, note)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (address, reason, now, reply, queue_id, note),
        )
        if cur.rowcount:
            self._audit("add", address, reason, note or reply)
        return bool(cur.rowcount)

    def remove(self, address: str, why: str) -> Suppression | None:
        entry = self.get(address)
        if entry is not None:
            self.db.execute("DELETE FROM suppressions WHERE address = ?", (address,))
            self.db.execute("DELETE FROM soft_bounces WHERE address = ?", (address,))
            self._audit("remove", address, entry.reason, why)
        return entry

    def hard_bounce(self, address: str, reply: str, queue_id: str) -> bool:
        return self.add(address, "HARDBOUNCE", reply=reply, queue_id=queue_id)

    def soft_bounce(self, address: str, reply: str, queue_id: str) -> tuple[int, bool]:
        """Count one soft-bounced message; (count, whether the address is now suppressed)."""
        now = self.clock()  # type: ignore[operator]
        self.db.execute(
            "INSERT INTO soft_bounces (address, count, updated) VALUES (?, 1, ?) "
            "ON CONFLICT(address) DO UPDATE SET count = count + 1, updated = excluded.updated",
            (address, now),
        )
        count = self.db.execute(
            "SELECT count FROM soft_bounces WHERE address = ?", (address,)
        ).fetchone()[0]
        added = count >= SOFT_BOUNCE_LIMIT and self.add(
            address, "SOFTBOUNCE", reply=reply, queue_id=queue_id
        )
        return count, added

    def delivered(self, address: str) -> None:
        self.db.execute("DELETE FROM soft_bounces WHERE address = ?", (address,))

    def soft_count(self, address: str) -> int:
        row = self.db.execute(
            "SELECT count FROM soft_bounces WHERE address = ?", (address,)
        ).fetchone()
        return row[0] if row else 0

    def get(self, address: str) -> Suppression | None:
        row = self.db.execute(
            "SELECT address, reason, created, reply, queue_id, note "
            "FROM suppressions WHERE address = ?",
            (address,),
        ).fetchone()
        return Suppression(*row) if row else None

    def list(self, reason: str | None = None) -> list[Suppression]:
        sql = "SELECT address, reason, created, reply, queue_id, note FROM suppressions"
        args: tuple[str, ...] = ()
        if reason:
            sql, args = sql + " WHERE reason = ?", (reason.upper(),)
        return [Suppression(*row) for row in self.db.execute(sql + " ORDER BY address", args)]

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0]

    def _audit(self, action: str, address: str, reason: str | None, note: str | None) -> None:
        self.db.execute(
            "INSERT INTO suppression_audit (time, action, address, reason, note) "
            "VALUES (?, ?, ?, ?, ?)",
            (self.clock(), action, address, reason, note),
        )  # type: ignore[operator]

    def close(self) -> None:
        self.db.close()
