"""An index over the relay's event lines, for `postform relay trace`.

Looking up one recipient or Message-ID among a million events must not read them
all: the index (SQLite, `events.idx.sqlite` in the data folder) keeps every event
line with its queue ID, and a table of lookup keys (recipient addresses and
Message-IDs) pointing at queue IDs. It is brought up to date from the event files
before each lookup, reading only what was appended since (each file is followed by
its inode, so a rotation that renames it loses nothing), and events older than the
retention are pruned.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from relay.events import event_files

INDEX_FILE = "events.idx.sqlite"
DEFAULT_RETENTION_DAYS = 30
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (inode INTEGER PRIMARY KEY, offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY, ts TEXT NOT NULL, queue_id TEXT, line TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_queue ON events (queue_id, ts);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE TABLE IF NOT EXISTS keys (key TEXT NOT NULL, queue_id TEXT NOT NULL, ts TEXT NOT NULL,
  PRIMARY KEY (key, queue_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keys_ts ON keys (ts);
"""


class EventIndex:
    def __init__(self, data_dir: Path, retention_days: float = DEFAULT_RETENTION_DAYS) -> None:
        self.data_dir = data_dir
        self.retention = timedelta(days=retention_days)
        path = data_dir / INDEX_FILE
        fresh = not path.exists()
        self.db = sqlite3.connect(path)
        if fresh:
            os.chmod(path, 0o600)
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def update(self, now: datetime | None = None) -> int:
        """Index what the event files gained since the last update; prune what is older
        than the retention. The number of events added."""
        added = 0
        with self.db:
            for path in event_files(self.data_dir):
                added += self._follow(path)
            cutoff = ((now or datetime.now(UTC)) - self.retention).isoformat()
            self.db.execute("DELETE FROM events WHERE ts < ?", (cutoff,))
            self.db.execute("DELETE FROM keys WHERE ts < ?", (cutoff,))
        return added

    def _follow(self, path: Path) -> int:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return 0
        row = self.db.execute("SELECT offset FROM files WHERE inode = ?", (stat.st_ino,)).fetchone()
        offset = row[0] if row and row[0] <= stat.st_size else 0
        with path.open("rb") as events:
            events.seek(offset)
            data = events.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next update
        rows = list(_rows(data[:end]))
        self.db.executemany(
            "INSERT INTO events (ts, queue_id, line) VALUES (?, ?, ?)",
            [(ts, qid, line) for ts, qid, line, _ in rows],
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO keys (key, queue_id, ts) VALUES (?, ?, ?)",
            [(key, qid, ts) for ts, qid, _, keys in rows if qid for key in keys],
        )
        self.db.execute(
            "INSERT OR REPLACE INTO files (inode, offset) VALUES (?, ?)",
            (stat.st_ino, offset + end),
        )
        return len(rows)

    def queue_ids(self, query: str, since: str = "") -> list[str]:
        """The queue IDs a query names: a queue ID itself, a Message-ID or a recipient."""
        key = lookup_key(query)
        if key is None:
            return [query] if self._known(query) else []
        found = self.db.execute(
            "SELECT queue_id FROM keys WHERE key = ? AND ts >= ? ORDER BY ts", (key, since)
        ).fetchall()
        return [qid for (qid,) in found]

    def _known(self, queue_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM events WHERE queue_id = ? LIMIT 1", (queue_id,))
        return row.fetchone() is not None

    def events(self, queue_id: str) -> list[dict[str, Any]]:
        found = self.db.execute(
            "SELECT line FROM events WHERE queue_id = ? ORDER BY ts, id", (queue_id,)
        ).fetchall()
        return [json.loads(line) for (line,) in found]


def lookup_key(query: str) -> str | None:
    """The key a query is indexed under, or None for a queue ID."""
    text = query.strip()
    if text.startswith("<") and text.endswith(">"):
        return "msgid:" + text
    if "@" in text:
        return "rcpt:" + text.lower()
    return None


def _rows(data: bytes) -> Iterator[tuple[str, str | None, str, list[str]]]:
    for raw in data.splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(record, dict) or not isinstance(record.get("ts"), str):
            continue
        qid = record.get("queue_id")
        qid = qid if isinstance(qid, str) else None
        yield record["ts"], qid, raw.decode(errors="replace"), _keys(record)


def _keys(record: dict[str, Any]) -> list[str]:
    keys = []
    message_id = record.get("message_id")
    if isinstance(message_id, str) and message_id:
        keys.append("msgid:" + message_id.strip())
    recipient = record.get("recipient")
    if isinstance(recipient, str):
        keys.append("rcpt:" + recipient.lower())
    for rcpt in record.get("rcpt_tos") or ():
        if isinstance(rcpt, str):
            keys.append("rcpt:" + rcpt.lower())
    return keys
