"""What a fleet's relay learned and has not yet written to the shared store, kept in its
local SQLite file so that it survives a restart during an outage: operations in order,
removed once the store has them."""

from __future__ import annotations

import json
import sqlite3
from typing import Any


class Outbox:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def put(self, op: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO outbox (op) VALUES (?)", (json.dumps(op),))

    def peek(self, limit: int | None = 500) -> list[tuple[int, dict[str, Any]]]:
        """The oldest `limit` operations (None: all of them), in order."""
        rows = self.db.execute(
            "SELECT seq, op FROM outbox ORDER BY seq LIMIT ?", (-1 if limit is None else limit,)
        )
        return [(int(seq), json.loads(op)) for seq, op in rows]

    def done(self, upto: int) -> None:
        self.db.execute("DELETE FROM outbox WHERE seq <= ?", (upto,))

    def pending(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
