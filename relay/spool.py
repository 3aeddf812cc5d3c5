"""The durable spool: one file per accepted message, written with group commit.

A message is acknowledged only after its file (envelope + signed message) and the
directory entry that names it are on disk. Messages arriving together share the
cost: a committer writes every pending file to tmp/, makes them durable (an
fdatasync each, or one syncfs(2) for a larger batch), renames them into queue/ and
fsyncs that directory once, then wakes all their sessions. A file in tmp/ was never
acknowledged and is removed at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.durable import fsync_dir, write_all

MAGIC = b"POSTFORM-SPOOL 1\n"
# From this many messages per commit, one syncfs(2) is cheaper than an fdatasync per file
# (measured here: 20 files, 3,600/s with fdatasync each, 7,700/s with one syncfs).
SYNCFS_MIN_BATCH = 4
_counter = itertools.count()


def new_queue_id() -> str:
    """Sortable by arrival, unique across processes: microseconds, pid, counter."""
    return f"{time.time_ns() // 1000:014x}{os.getpid() & 0xFFFFFF:06x}{next(_counter) & 0xFFFF:04x}"


@dataclass(frozen=True)
class SpooledMessage:
    queue_id: str
    envelope: dict[str, Any]
    message: bytes


class Spool:
    def __init__(self, root: Path, clean: bool = True) -> None:
        """`clean` removes leftovers in tmp/ (never acknowledged); with several worker
        processes only the parent does that, before the workers start."""
        self.queue = root / "queue"
        self.tmp = root / "tmp"
        for folder in (root, self.queue, self.tmp):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if clean:
            for leftover in self.tmp.iterdir():
                leftover.unlink()
        self._pending: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._wakeup: asyncio.Event | None = None
        self._committer: asyncio.Task[None] | None = None

    async def store(self, queue_id: str, envelope: dict[str, Any], message: bytes) -> None:
        """Write the message durably; returns once it is on disk (or raises OSError)."""
        header = json.dumps({"queue_id": queue_id, **envelope}, separators=(",", ":")).encode()
        payload = MAGIC + header + b"\n" + message
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((queue_id, payload, done))
        if self._committer is None or self._committer.done():
            self._wakeup = asyncio.Event()
            self._committer = loop.create_task(self._commit_loop())
        assert self._wakeup is not None
        self._wakeup.set()
        await done

    async def _commit_loop(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await loop.run_in_executor(None, self._commit, batch)
            except Exception as exc:
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for *_, done in batch:
                if not done.done():
                    done.set_result(None)

    def _commit(self, batch: list[tuple[str, bytes, asyncio.Future[None]]]) -> None:
        # Plain string paths: pathlib's `/` showed in profiles of this hot loop.
        written: list[tuple[str, str]] = []
        one_sync = len(batch) >= SYNCFS_MIN_BATCH and _syncfs is not None
        tmp_dir, queue_dir = str(self.tmp), str(self.queue)
        try:
            for queue_id, payload, _ in batch:
                tmp = f"{tmp_dir}/{queue_id}.msg"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    write_all(fd, payload)
                    if not one_sync:
                        os.fdatasync(fd)
                finally:
                    os.close(fd)
                written.append((tmp, f"{queue_dir}/{queue_id}.msg"))
            if one_sync:
                _sync_filesystem(self.tmp)
            for tmp, final in written:
                os.rename(tmp, final)
            fsync_dir(queue_dir)
        except OSError:
            for tmp, _ in written:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise


def read_spool_file(path: Path) -> SpooledMessage:
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise ValueError(f"{path} is not a postform spool file")
    header, _, message = raw[len(MAGIC) :].partition(b"\n")
    envelope = json.loads(header)
    return SpooledMessage(envelope.pop("queue_id"), envelope, message)


def read_envelope(path: Path) -> dict[str, Any]:
    """A spool file's envelope alone (its header line; the message is not read).
    ValueError when it is not a spool file."""
    with path.open("rb") as spooled:
        magic, head = spooled.readline(64), spooled.readline(1 << 20)
    envelope = json.loads(head) if magic == MAGIC else None
    if not isinstance(envelope, dict):
        raise ValueError(f"{path} is not a postform spool file")
    return envelope


def queued_signatures(root: Path) -> dict[str, int] | None:
    """How many queued messages each DKIM key ("domain/selector") signed, read from the
    spool headers under `root` (a data folder's spool/); None when there is no spool
    here. What `plan` waits on before it removes a retired selector's record."""
    queue = root / "queue"
    if not queue.is_dir():
        return None
    counts: dict[str, int] = {}
    for path in queue.iterdir():
        try:
            envelope = read_envelope(path)
        except (OSError, ValueError):
            continue  # being removed, or not a spool file
        key = envelope.get("dkim")
        if isinstance(key, str) and key:
            if "/" not in key:  # written before the domain was recorded with the selector
                key = f"{str(envelope.get('from', '')).rpartition('@')[2].lower()}/{key}"
            counts[key] = counts.get(key, 0) + 1
    return counts


def _load_syncfs() -> Callable[[int], int] | None:
    """libc's syncfs(2) (Linux): one call makes every file written so far durable."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        syncfs: Callable[[int], int] = libc.syncfs
        return syncfs
    except (OSError, AttributeError):
        return None


_syncfs = _load_syncfs()


def _sync_filesystem(path: Path) -> None:
    assert _syncfs is not None
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}")
    finally:
        os.close(fd)
