"""The relay's runtime store: SQLite in the data folder (the embedded default).

Counters are kept in memory and saved here every second and at shutdown (WAL,
synchronous=NORMAL: a crash loses at most the last second of counts, never the
database); with several worker processes each adds its own increments.
"""

from __future__ import annotations

from pathlib import Path

from relay.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS daily_recipients (day TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL,
                                    updated REAL NOT NULL);
"""


class Store:
    def __init__(self, path: Path) -> None:
        self.db = open_db(path, _SCHEMA)

    def day_count(self, day: str) -> int:
        row = self.db.execute("SELECT count FROM daily_recipients WHERE day = ?", (day,)).fetchone()
        return row[0] if row else 0

    def add_day(self, day: str, n: int) -> int:
        """Add `n` to `day` and return the total across all workers."""
        self.db.execute(
            "INSERT INTO daily_recipients (day, count) VALUES (?, ?) "
            "ON CONFLICT(day) DO UPDATE SET count = count + excluded.count",
            (day, n),
        )
        return self.day_count(day)

    def load_bucket(self, name: str) -> tuple[float, float] | None:
        row = self.db.execute(
            "SELECT tokens, updated FROM buckets WHERE name = ?", (name,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def save_bucket(self, name: str, tokens: float, updated: float) -> None:
        self.db.execute(
            "INSERT INTO buckets (name, tokens, updated) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET tokens = excluded.tokens, "
            "updated = excluded.updated",
            (name, tokens, updated),
        )

    def close(self) -> None:
        self.db.close()
