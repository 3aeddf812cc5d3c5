"""The relay's SQLite file (the embedded default store): one way to open it."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """Autocommit, WAL, synchronous=NORMAL (a crash may lose the last moments of counters,
    never the database), shared safely by the relay's processes; the file is mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    path.chmod(0o600)
    return db
