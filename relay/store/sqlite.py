"""The embedded store: one SQLite file (`relay.sqlite`) in the relay's data folder.

One connection serves the suppression list and the counters. WAL with
synchronous=NORMAL: a crash may lose the last moments of counters, never the
database; the worker processes of one relay and the `suppressions` commands share
the file safely. The file is mode 0600. `PRAGMA user_version` is the schema
version; `_migrate` brings older files forward.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple
from pathlib import Path

from relay.contract.suppression import SOFT_BOUNCE_LIMIT, SuppressionReason, suppression_key
from relay.store.interfaces import Suppression
from relay.store.storable import storable

DB_FILE = "relay.sqlite"
SCHEMA_VERSION = 2
Clock = Callable[[], float]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    key TEXT PRIMARY KEY, address TEXT NOT NULL, reason TEXT NOT NULL, created REAL NOT NULL,
    reply TEXT, queue_id TEXT, note TEXT);
CREATE TABLE IF NOT EXISTS soft_bounces (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS suppression_audit (
    time REAL NOT NULL, action TEXT NOT NULL, address TEXT NOT NULL, reason TEXT, note TEXT);
CREATE TABLE IF NOT EXISTS daily_recipients (day TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL);
"""

# Version 0 (postform 0.1) keyed suppressions and soft bounces by the address as written,
# so `Bob@x` and `bob@x` could be two rows: merge them under the lower-cased key.
_FROM_V0 = """
ALTER TABLE suppressions RENAME TO suppressions_v0;
ALTER TABLE soft_bounces RENAME TO soft_bounces_v0;
{schema}
INSERT INTO suppressions (key, address, reason, created, reply, queue_id, note)
    SELECT lower(address), address, reason, created, reply, queue_id, note
    FROM suppressions_v0 WHERE true ORDER BY created
    ON CONFLICT (key) DO NOTHING;
INSERT INTO soft_bounces (key, count, updated)
    SELECT lower(address), count, updated FROM soft_bounces_v0 WHERE true
    ON CONFLICT (key) DO UPDATE SET count = soft_bounces.count + excluded.count,
        updated = max(soft_bounces.updated, excluded.updated);
DROP TABLE suppressions_v0;
DROP TABLE soft_bounces_v0;
"""

_COLUMNS = "address, reason, created, reply, queue_id, note"


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    if read_only:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    use_wal(db)
    db.execute("PRAGMA synchronous=NORMAL")
    _migrate(db)
    path.chmod(0o600)
    return db


def use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL. SQLite answers "database is locked" at once, without waiting out the
    busy timeout, when another process (a second worker starting) holds a lock on a new
    file: try again for up to 5 s."""
    for attempt in range(50):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.1)


def _migrate(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            columns = {row[1] for row in db.execute("PRAGMA table_info(suppressions)")}
            if columns and "key" not in columns:
                for statement in _FROM_V0.format(schema=_SCHEMA).split(";"):
                    if statement.strip():
                        db.execute(statement)
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"relay.sqlite has schema version {version}; this postform reads "
                f"{SCHEMA_VERSION}: upgrade postform"
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class EmbeddedStore:
    """The SQLite file and the two views of it the relay uses."""

    def __init__(self, folder: Path, clock: Clock = time.time) -> None:
        self.db = connect(folder / DB_FILE)
        self.suppressions = SqliteSuppressionList(self.db, clock)
        self.counters = SqliteCounterStore(self.db)

    def close(self) -> None:
        self.db.close()


class SqliteSuppressionList:
    def __init__(self, db: sqlite3.Connection, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    def reason(self, address: str) -> str | None:
        row = self.db.execute(
            "SELECT reason FROM suppressions WHERE key = ?", (suppression_key(address),)
        ).fetchone()
        return str(row[0]) if row else None

    def add(
        self,
        address: str,
        reason: str,
        *,
        reply: str | None = None,
        queue_id: str | None = None,
        note: str | None = None,
    ) -> bool:
        reply, note = storable(reply), storable(note)
        cur = self.db.execute(
            "INSERT INTO suppressions (key, address, reason, created, reply, queue_id, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (suppression_key(address), address, reason, self.clock(), reply, queue_id, note),
        )
        if cur.rowcount:
            self._audit("add", address, reason, note or reply)
        return bool(cur.rowcount)

    def remove(self, address: str, why: str) -> Suppression | None:
        entry = self.get(address)
        if entry is not None:
            key = suppression_key(address)
            self.db.execute("DELETE FROM suppressions WHERE key = ?", (key,))
            self.db.execute("DELETE FROM soft_bounces WHERE key = ?", (key,))
            self._audit("remove", entry.address, entry.reason, storable(why))
        return entry

    def hard_bounce(self, address: str, reply: str, queue_id: str) -> bool:
        return self.add(address, SuppressionReason.HARDBOUNCE, reply=reply, queue_id=queue_id)

    def soft_bounce(self, address: str, reply: str, queue_id: str) -> tuple[int, bool]:
        key = suppression_key(address)
        self.db.execute(
            "INSERT INTO soft_bounces (key, count, updated) VALUES (?, 1, ?) "
            "ON CONFLICT (key) DO UPDATE SET count = soft_bounces.count + 1, "
            "updated = excluded.updated",
            (key, self.clock()),
        )
        count = self.soft_count(address)
        added = count >= SOFT_BOUNCE_LIMIT and self.add(
            address, SuppressionReason.SOFTBOUNCE, reply=reply, queue_id=queue_id
        )
        return count, added

    def delivered(self, address: str) -> None:
        self.db.execute("DELETE FROM soft_bounces WHERE key = ?", (suppression_key(address),))

    def soft_count(self, address: str) -> int:
        row = self.db.execute(
            "SELECT count FROM soft_bounces WHERE key = ?", (suppression_key(address),)
        ).fetchone()
        return int(row[0]) if row else 0

    def get(self, address: str) -> Suppression | None:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM suppressions WHERE key = ?", (suppression_key(address),)
        ).fetchone()
        return Suppression(*row) if row else None

    def list(self, reason: str | None = None) -> list[Suppression]:
        sql = f"SELECT {_COLUMNS} FROM suppressions"
        args: tuple[str, ...] = ()
        if reason:
            sql, args = sql + " WHERE reason = ?", (reason.upper(),)
        return [Suppression(*row) for row in self.db.execute(sql + " ORDER BY key", args)]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM suppressions").fetchone()[0])

    # A fleet's relay keeps a mirror of the shared list here (shared_suppressions.py): these
    # change the mirror only, without an audit row (the shared store keeps that).

    def mirror_add(self, address: str, reason: str, created: float | None = None) -> None:
        self.db.execute(
            "INSERT INTO suppressions (key, address, reason, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            (suppression_key(address), address, reason, created or self.clock()),
        )

    def mirror_remove(self, key: str) -> None:
        self.db.execute("DELETE FROM suppressions WHERE key = ?", (key,))

    def mirror_replace(self, rows: Sequence[Suppression], soft: dict[str, int]) -> None:
        """The whole list as the shared store has it now."""
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute("DELETE FROM suppressions")
            self.db.executemany(
                "INSERT INTO suppressions (key, address, reason, created, reply, queue_id, note)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                [(suppression_key(r.address), *astuple(r)) for r in rows],
            )
            self.db.execute("DELETE FROM soft_bounces")
            self.db.executemany(
                "INSERT INTO soft_bounces (key, count, updated) VALUES (?, ?, ?)",
                [(k, c, self.clock()) for k, c in soft.items()],
            )

    def _audit(self, action: str, address: str, reason: str | None, note: str | None) -> None:
        self.db.execute(
            "INSERT INTO suppression_audit (time, action, address, reason, note) "
            "VALUES (?, ?, ?, ?, ?)",
            (self.clock(), action, address, reason, note),
        )


class SqliteCounterStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def day_count(self, day: str) -> int:
        row = self.db.execute("SELECT count FROM daily_recipients WHERE day = ?", (day,)).fetchone()
        return int(row[0]) if row else 0

    def add_day(self, day: str, n: int) -> int:
        self.db.execute(
            "INSERT INTO daily_recipients (day, count) VALUES (?, ?) "
            "ON CONFLICT (day) DO UPDATE SET count = daily_recipients.count + excluded.count",
            (day, n),
        )
        return self.day_count(day)

    def load_bucket(self, name: str) -> tuple[float, float] | None:
        row = self.db.execute(
            "SELECT tokens, updated FROM buckets WHERE name = ?", (name,)
        ).fetchone()
        return (float(row[0]), float(row[1])) if row else None

    def save_bucket(self, name: str, tokens: float, updated: float) -> None:
        self.db.execute(
            "INSERT INTO buckets (name, tokens, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, "
            "updated = excluded.updated",
            (name, tokens, updated),
        )


def learned_count(folder: Path) -> int | None:
    """How many suppressions the relay of `folder` learned, read-only; None when it has no
    store yet or it cannot be read (plan shows the number, never changes it)."""
    return _count(folder, "suppressions")


def outbox_count(folder: Path) -> int | None:
    """What a fleet's relay learned and has not yet written to the shared store."""
    return _count(folder, "outbox")


def _count(folder: Path, table: str) -> int | None:
    path = folder / DB_FILE
    if not path.exists():
        return None
    try:
        db = connect(path, read_only=True)
        try:
            return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None
