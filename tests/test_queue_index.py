"""The delivery worker's queue bookkeeping (issue #12): what is due is known without
rescanning the folder, and finished messages leave in batches with one folder sync."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import relay.queueindex as queueindex
from relay.queueindex import QueueIndex, Removals
from relay.spool import new_queue_id


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _spool(folder: Path, queue_id: str) -> None:
    (folder / f"{queue_id}.msg").write_bytes(b"x")
    (folder / f"{queue_id}.state").write_bytes(b"{}")


def test_the_folder_is_read_at_start_then_only_every_rescan_seconds(tmp_path: Path) -> None:
    clock = Clock()
    index = QueueIndex(tmp_path, clock, rescan=60.0)
    first = new_queue_id()
    _spool(tmp_path, first)
    index.refresh()
    assert index.due(clock.now, set()) == [first]
    other = new_queue_id()
    _spool(tmp_path, other)  # another process spools: not seen until the next rescan
    clock.now += 30
    index.refresh()
    assert index.due(clock.now, set()) == [first]
    mine = new_queue_id()
    index.add(mine)  # this process's own arrival is due at once
    assert index.due(clock.now, set()) == [first, mine]
    clock.now += 31
    index.refresh()
    (tmp_path / f"{first}.msg").unlink()
    index.refresh(force=True)  # vanished files are forgotten, new ones are due
    assert index.due(clock.now, {mine}) == [other]


def test_due_times_and_the_oldest_age_come_from_the_index(tmp_path: Path) -> None:
    clock = Clock()
    index = QueueIndex(tmp_path, clock, rescan=60.0)
    a, b = new_queue_id(), new_queue_id()
    index.add(a)
    index.add(b)
    index.set_due(a, clock.now + 120)
    assert index.due(clock.now, set()) == [b]
    assert index.due(clock.now + 120, set()) == [a, b]
    arrived = int(a[:14], 16) / 1e6
    assert index.oldest_age(arrived + 5) == pytest.approx(5, abs=0.01)
    index.discard(a)
    index.discard(b)
    assert len(index) == 0 and index.oldest_age(arrived + 5) == 0.0


def test_removals_unlink_each_message_and_sync_the_folder_once_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[str] = []
    real = queueindex.fsync_dir
    monkeypatch.setattr(queueindex, "fsync_dir", lambda p: (syncs.append(str(p)), real(p)))
    ids = [new_queue_id() for _ in range(50)]
    for queue_id in ids:
        _spool(tmp_path, queue_id)
    keep = new_queue_id()
    _spool(tmp_path, keep)

    index = QueueIndex(tmp_path, Clock(), rescan=0.0)

    async def scenario() -> None:
        removals = Removals(tmp_path)
        for queue_id in ids:
            index.add(queue_id)
            index.discard(queue_id)  # finished
            removals.add(queue_id)
        # A rescan while the files are still there must not bring them back as due.
        index.refresh(force=True, leaving=removals.leaving)
        assert index.due(2000.0, set()) == [keep]
        await removals.drain()
        assert not removals.leaving

    asyncio.run(scenario())
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{keep}.msg", f"{keep}.state"]
    assert 1 <= len(syncs) <= 2, syncs  # the first removal's batch, then the other 49
