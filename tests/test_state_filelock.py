from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from reconciler.errors import StateError, StateLockedError
from reconciler.state.filelock import FileLock

HOLDER = """
import sys, time
from pathlib import Path
from reconciler.state.filelock import FileLock
with FileLock(Path(sys.argv[1])).hold("apply", 0) as info:
    print(info.id, flush=True)
    time.sleep(60)
"""


@contextmanager
def held_elsewhere(path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Another process holding the lock at `path`, and its lock ID; killed at the end."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            yield proc, proc.stdout.readline().strip()
        finally:
            proc.kill()


def test_second_holder_fails_fast_naming_the_first(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "state.json.lock")
    with lock.hold("apply", 0) as info:
        started = time.monotonic()
        with pytest.raises(StateLockedError) as raised, lock.hold("apply", 0):
            pass
        assert time.monotonic() - started < 1
        message = str(raised.value)
        assert info.id in message and "(pid" in message and "apply" in message
        assert f"force-unlock {info.id}" in message
    assert not lock.path.exists()


def test_waits_up_to_lock_timeout_for_a_release(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "state.json.lock")
    holding = threading.Event()

    def hold() -> None:
        with lock.hold("apply", 0):
            holding.set()
            time.sleep(0.3)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    with lock.hold("apply", 5):
        assert lock.held()
    thread.join()


def test_timeout_expires_with_a_clear_message(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "state.json.lock")
    with (
        lock.hold("apply", 0),
        pytest.raises(StateLockedError, match="after waiting 0.2s"),
        lock.hold("apply", 0.2),
    ):
        pass


def test_a_holder_killed_with_sigkill_releases_the_lock(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "state.json.lock")
    with held_elsewhere(lock.path) as (proc, lock_id):
        assert lock.held()
        with pytest.raises(StateLockedError, match=lock_id), lock.hold("apply", 0):
            pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert lock.path.exists() and not lock.held()  # the file stays, the lock does not
    with lock.hold("apply", 0) as info:
        assert info.id != lock_id


def test_force_unlock_breaks_the_lock_of_a_process_that_hangs(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / "state.json.lock")
    with held_elsewhere(lock.path) as (proc, lock_id):
        with pytest.raises(StateError, match="does not match"):
            lock.force_unlock("wrong")
        assert lock.force_unlock(lock_id) is True  # its holder still runs
        with lock.hold("apply", 0):
            assert lock.held() and proc.poll() is None


def test_force_unlock_without_a_lock_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="not locked"):
        FileLock(tmp_path / "state.json.lock").force_unlock("abc")
