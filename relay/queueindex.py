"""What the delivery worker knows about its queue without reading the folder: each
message's next due time, kept in memory, as Postfix's queue manager keeps its active
queue instead of rescanning the incoming and deferred folders.

Messages this process accepts are added as they are spooled (`add`); the folder is
scanned at start and then only every `rescan` seconds, for what another process put
there (the other `--workers`, `relay deliver`). A queue ID starts with its arrival time
in microseconds, so the oldest message's age needs no file read.

Finished messages are removed in batches (`Removals`): their files are unlinked and the
folder is synced once for all of them, as the spool's group commit does for arrivals.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from relay.durable import fsync_dir


class QueueIndex:
    def __init__(self, queue_dir: Path, clock: Callable[[], float], rescan: float) -> None:
        self.queue_dir = queue_dir
        self.clock = clock
        self.rescan = rescan
        self._due: dict[str, float] = {}  # queue ID -> when next due (0: now)
        # Heaps, so a pass costs what is due, not the whole queue (a deferred backlog of
        # 100,000 was scanned on every wake): (when, ID) per set_due, and IDs by arrival.
        # Entries that no longer match _due are skipped as they come up.
        self._times: list[tuple[float, str]] = []
        self._arrivals: list[str] = []
        self._scanned_at = float("-inf")

    def __len__(self) -> int:
        return len(self._due)

    def add(self, queue_id: str) -> None:
        if queue_id not in self._due:
            self._due[queue_id] = 0.0
            heapq.heappush(self._times, (0.0, queue_id))
            heapq.heappush(self._arrivals, queue_id)

    def set_due(self, queue_id: str, when: float) -> None:
        if queue_id in self._due:
            self._due[queue_id] = when
            heapq.heappush(self._times, (when, queue_id))

    def discard(self, queue_id: str) -> None:
        self._due.pop(queue_id, None)

    def refresh(self, force: bool = False, leaving: Collection[str] = ()) -> None:
        """Scan the folder when `rescan` seconds have passed since the last scan (or
        `force`): new files are due now, vanished ones are forgotten. `leaving` are
        finished messages whose files are still being removed: not new, never due."""
        now = self.clock()
        if not force and now - self._scanned_at < self.rescan:
            return
        self._scanned_at = now
        try:
            with os.scandir(self.queue_dir) as entries:
                present = {e.name[:-4] for e in entries if e.name.endswith(".msg")}
        except FileNotFoundError:
            present = set()
        for gone in self._due.keys() - present:
            del self._due[gone]
        for queue_id in present.difference(leaving):
            self.add(queue_id)

    def due(self, now: float, busy: set[str]) -> list[str]:
        """Queue IDs due at `now` and not in `busy`, oldest first. Costs what is due, not
        the queue: the due entries are taken off the heap, stale ones dropped, the rest
        put back (they stay due until set_due or discard says otherwise)."""
        current: set[tuple[float, str]] = set()
        while self._times and self._times[0][0] <= now:
            when, queue_id = heapq.heappop(self._times)
            if self._due.get(queue_id) == when:
                current.add((when, queue_id))
        for entry in current:
            heapq.heappush(self._times, entry)
        return sorted(q for _, q in current if q not in busy)

    def oldest_age(self, now: float) -> float:
        """Seconds since the oldest queued message arrived (0 with an empty queue)."""
        while self._arrivals and self._arrivals[0] not in self._due:
            heapq.heappop(self._arrivals)
        if not self._arrivals:
            return 0.0
        try:
            arrived = int(self._arrivals[0][:14], 16) / 1e6
        except ValueError:
            return 0.0
        return max(0.0, now - arrived)


class Removals:
    """Finished messages leave the queue in batches: unlink each file, sync the folder
    once. Until the sync a crash can bring a finished message back (delivered again),
    never lose an unfinished one."""

    def __init__(self, queue_dir: Path) -> None:
        self.queue_dir = queue_dir
        self.leaving: set[str] = set()  # asked for and not yet removed
        self._pending: list[str] = []
        self._flushing: asyncio.Task[None] | None = None

    def add(self, queue_id: str) -> None:
        self.leaving.add(queue_id)
        self._pending.append(queue_id)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def drain(self) -> None:
        """Wait until every removal asked for so far is on disk."""
        while self._flushing is not None and not self._flushing.done():
            await self._flushing
        if self._pending:
            await self._flush()

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await loop.run_in_executor(None, remove_messages, self.queue_dir, batch)
            except OSError:
                # Left in the queue for now: the next removal tries them again, and a
                # restart finds them finished in their progress files at worst.
                self._pending[:0] = batch
                return
            self.leaving.difference_update(batch)


def remove_messages(queue_dir: Path, queue_ids: Iterable[str]) -> None:
    """Drop finished messages: each message file, then its progress, then one folder sync."""
    folder = str(queue_dir)
    for queue_id in queue_ids:
        for suffix in (".msg", ".state"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{folder}/{queue_id}{suffix}")
    fsync_dir(folder)
