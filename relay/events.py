"""One JSON line per event, to stderr and to a rotating file in the data folder.

Fields are chosen by the caller; no password, key or message body is ever passed in.
Taps (`tap(fn)`) see every record written, on the writer's thread: the webhook outbox
and the fleet's event table take their events there; a tap must be quick and must not
raise (one that does is logged once and dropped).
The file rotates at `max_bytes` to events.jsonl.1 ... .{keep}; `postform relay events`
reads them back in order.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from relay.eventflood import FloodGuard

EVENT_FILE = "events.jsonl"


class EventLog:
    def __init__(
        self,
        stream: TextIO | None = None,
        path: Path | None = None,
        max_bytes: int = 10 * 1024 * 1024,
        keep: int = 5,
    ) -> None:
        self.stream = stream or sys.stderr
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep
        self._fd: int | None = None
        self.flood = FloodGuard()
        self._writes = 0
        self._taps: list[Callable[[dict[str, Any]], None]] = []
        # Lines come from the event loop and from threads (the webhook tap's writer, the
        # store's): one at a time into the stream and the file, whose rotation they share.
        self._lock = threading.Lock()

    def tap(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """Call `fn` with every record written from now on (ts and event included)."""
        self._taps.append(fn)

    def emit(self, event: str, **fields: Any) -> None:
        if not self.flood.allow(event, fields):
            self.summarize()
            return
        self._write(event, fields)

    def summarize(self, force: bool = False) -> None:
        """Write the `events_suppressed` line when one is due (called every second)."""
        summary = self.flood.summary(force)
        if summary is not None:
            self._write("events_suppressed", summary)

    def _write(self, event: str, fields: dict[str, Any]) -> None:
        record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event}
        record.update(fields)
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            # A full disk or a closed stderr must not fail the SMTP transaction that logs.
            with contextlib.suppress(OSError, ValueError):
                self.stream.write(line)
                self.stream.flush()
            if self.path is not None:
                with contextlib.suppress(OSError):
                    self._append(line.encode())
        for fn in tuple(self._taps):  # outside the lock: a tap may write a line itself
            try:
                fn(record)
            except Exception as exc:  # a broken tap must not break logging or SMTP
                with contextlib.suppress(ValueError):  # another thread removed it already
                    self._taps.remove(fn)
                self._write("tap_error", {"tap": repr(fn)[:200], "error": f"{exc!r}"[:500]})

    def _append(self, data: bytes) -> None:
        """Append one line with one write(2) on an O_APPEND descriptor kept open: lines from
        several processes stay whole. fstat tells the size; a file another process rotated
        away (a new inode at the path) is reopened."""
        assert self.path is not None
        if self._fd is None or self._replaced():
            self._open()
        assert self._fd is not None
        if os.fstat(self._fd).st_size + len(data) > self.max_bytes:
            self._rotate()
            self._open()
        os.write(self._fd, data)

    def _open(self) -> None:
        assert self.path is not None
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._writes = 0

    def _replaced(self) -> bool:
        self._writes += 1
        if self._writes % 256:
            return False
        assert self.path is not None and self._fd is not None
        try:
            return os.stat(self.path).st_ino != os.fstat(self._fd).st_ino
        except FileNotFoundError:
            return True

    def _rotate(self) -> None:
        assert self.path is not None
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        with contextlib.suppress(FileNotFoundError):
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))


def event_files(folder: Path, keep: int = 5) -> list[Path]:
    """The event log files, oldest first."""
    base = folder / EVENT_FILE
    rotated = [base.with_name(f"{EVENT_FILE}.{n}") for n in range(keep, 0, -1)]
    return [p for p in [*rotated, base] if p.exists()]
