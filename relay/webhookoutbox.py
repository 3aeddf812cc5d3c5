"""The webhook outbox: events waiting for their webhook, in `webhooks.sqlite` (mode 0600)
in the relay's data folder, so that they survive a restart and a dead endpoint.

Every worker process adds to it (`put`, on its tap's writer thread: one transaction a
batch, no fsync: WAL with synchronous=NORMAL, and the checkpoints left to the sender's thread,
`checkpoint` every second, unless the WAL grows past 40 MB);
worker 0's sender takes the oldest due rows, deletes what was sent and reschedules
what was not. A per-webhook count (`pending`, kept by triggers) bounds each webhook's
rows atomically across the processes. `messages` remembers each accepted message's
sender and Message-ID for the events that come later (perhaps in another worker,
perhaps after a restart), for 7 days and 200,000 messages at most.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from relay.store.sqlite import use_wal

OUTBOX_FILE = "webhooks.sqlite"
MESSAGE_DAYS = 7.0
MAX_MESSAGES = 200_000
BATCH = 1_000  # rows deleted per transaction, so a writer waits milliseconds at most
WRITER_CHECKPOINT = 10_000  # WAL pages (40 MB) past which a tapping worker checkpoints

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    webhook TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_by_webhook ON outbox (webhook, id);
CREATE TABLE IF NOT EXISTS pending (webhook TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS outbox_added AFTER INSERT ON outbox BEGIN
    INSERT INTO pending (webhook, n) VALUES (new.webhook, 1)
        ON CONFLICT (webhook) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS outbox_removed AFTER DELETE ON outbox BEGIN
    UPDATE pending SET n = n - 1 WHERE webhook = old.webhook;
END;
CREATE TABLE IF NOT EXISTS messages (
    queue_id TEXT PRIMARY KEY,
    sender TEXT,
    message_id TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_age ON messages (created);
"""
_PUT = (
    "INSERT INTO outbox (webhook, event_id, body, created) SELECT ?, ?, ?, ? "
    "WHERE coalesce((SELECT n FROM pending WHERE webhook = ?), 0) < ?"
)
Row = tuple[int, str, bytes, int, float]  # id, event_id, body, attempts, created


def connect(path: Path, busy: float, checkpoints: bool) -> sqlite3.Connection:
    """A connection to the outbox, made (schema and all) when it is not there yet."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    db = sqlite3.connect(path, timeout=busy, isolation_level=None, check_same_thread=False)
    use_wal(db)  # a second worker making the file may find it locked: use_wal waits
    db.execute("PRAGMA synchronous=NORMAL")
    if not checkpoints:  # the sender checkpoints every second; this is the safety net
        db.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT}")
    with transaction(db):
        for statement in _statements(_SCHEMA):
            db.execute(statement)
    path.chmod(0o600)
    return db


def _statements(script: str) -> list[str]:
    """The script's statements (a trigger's body holds semicolons of its own)."""
    out, current = [], ""
    for line in script.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")  # the write lock first: no deadlock between writers
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class OutboxWriter:
    """What the tap does, on its writer thread: a batch of statements in one transaction
    the tap opens (`transaction(writer.db)`), waiting `busy` at most for the lock."""

    def __init__(self, path: Path, busy: float = 1.0) -> None:
        self.db = connect(path, busy, checkpoints=False)

    def put(self, rows: list[tuple[str, int, str, bytes, float]]) -> list[str]:
        """Add (webhook, max_pending, event_id, body, created) rows; the webhooks whose
        row was dropped because they already hold max_pending."""
        dropped = []
        for webhook, bound, event_id, body, created in rows:
            cursor = self.db.execute(_PUT, (webhook, event_id, body, created, webhook, bound))
            if cursor.rowcount != 1:
                dropped.append(webhook)
        return dropped

    def remember(self, queue_id: str, sender: str | None, message_id: str | None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?)",
            (queue_id, sender, message_id, time.time()),
        )

    def message(self, queue_id: str) -> tuple[str, str] | None:
        row = self.db.execute(
            "SELECT sender, message_id FROM messages WHERE queue_id = ?", (queue_id,)
        ).fetchone()
        return None if row is None else (row[0] or "", row[1] or "")

    def close(self) -> None:
        self.db.close()


class OutboxReader:
    """What the sender does, on its own thread (every call blocks)."""

    def __init__(self, path: Path) -> None:
        self.db = connect(path, 10.0, checkpoints=True)

    def due(self, webhook: str, now: float, limit: int) -> list[Row]:
        rows = self.db.execute(
            "SELECT id, event_id, body, attempts, created FROM outbox "
            "WHERE webhook = ? AND next_attempt <= ? ORDER BY id LIMIT ?",
            (webhook, now, limit),
        )
        return [(int(i), str(e), bytes(b), int(a), float(c)) for i, e, b, a, c in rows]

    def settle(self, sent: list[int], retry: list[tuple[int, float]]) -> None:
        """Delete the rows sent; the others wait until their next attempt."""
        with transaction(self.db):
            self.db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in sent])
            self.db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt = ? WHERE id = ?",
                [(at, i) for i, at in retry],
            )

    def pending(self) -> dict[str, int]:
        return {str(w): int(n) for w, n in self.db.execute("SELECT webhook, n FROM pending")}

    def retry_now(self) -> None:
        """At start: every row is due (a restart is when an endpoint may have been fixed).
        BATCH rows a transaction, so the tapping workers wait milliseconds at most."""
        ids = [i for (i,) in self.db.execute("SELECT id FROM outbox WHERE next_attempt > 0")]
        for start in range(0, len(ids), BATCH):
            with transaction(self.db):
                self.db.executemany(
                    "UPDATE outbox SET next_attempt = 0 WHERE id = ?",
                    [(i,) for i in ids[start : start + BATCH]],
                )

    def expire(self, before: float) -> dict[str, int]:
        """Delete the rows made before `before`; how many of each webhook's went."""
        return self._delete("created < ?", (before,))

    def forget(self, keep: list[str]) -> dict[str, int]:
        """Delete the rows of every webhook not in `keep` (removed from the policy)."""
        marks = ",".join("?" * len(keep))
        gone = self._delete(f"webhook NOT IN ({marks})", tuple(keep))
        with transaction(self.db):
            self.db.execute(f"DELETE FROM pending WHERE webhook NOT IN ({marks})", tuple(keep))
        return gone

    def _delete(self, where: str, args: tuple[Any, ...]) -> dict[str, int]:
        """Delete the rows `where` says: found without the write lock (a scan), then
        deleted BATCH at a time, so a tapping worker never waits for the scan."""
        rows = self.db.execute(f"SELECT id, webhook FROM outbox WHERE {where}", args).fetchall()
        for start in range(0, len(rows), BATCH):
            with transaction(self.db):
                self.db.executemany(
                    "DELETE FROM outbox WHERE id = ?",
                    [(i,) for i, _ in rows[start : start + BATCH]],
                )
        return dict(Counter(str(webhook) for _, webhook in rows))

    def checkpoint(self) -> None:
        """Copy the WAL into the file (with its fsyncs), here, off the event loops."""
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def tidy(self, now: float) -> None:
        """Forget old messages (7 days, 200,000 at most)."""
        while True:
            with transaction(self.db):
                cursor = self.db.execute(
                    "DELETE FROM messages WHERE queue_id IN (SELECT queue_id FROM messages "
                    f"WHERE created < ? ORDER BY created LIMIT {BATCH})",
                    (now - MESSAGE_DAYS * 86_400,),
                )
            if cursor.rowcount < BATCH:
                break
        (count,) = self.db.execute("SELECT count(*) FROM messages").fetchone()
        if count > MAX_MESSAGES:
            with transaction(self.db):
                self.db.execute(
                    "DELETE FROM messages WHERE queue_id IN (SELECT queue_id FROM messages "
                    "ORDER BY created LIMIT ?)",
                    (count - MAX_MESSAGES,),
                )

    def close(self) -> None:
        self.db.close()
