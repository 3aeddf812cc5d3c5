from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from reconciler.errors import StateError, StateLockedError
from reconciler.lock import force_unlock, lock_path, state_lock


def test_second_holder_fails_fast_naming_the_first(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with state_lock(state, "apply") as lock_id:
        started = time.monotonic()
        with pytest.raises(StateLockedError) as info, state_lock(state, "apply"):
            pass
        assert time.monotonic() - started < 1
        message = str(info.value)
        assert lock_id in message and "(pid" in message and "apply" in message
    assert not lock_path(state).exists()


def test_waits_up_to_lock_timeout_for_a_release(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    holding = threading.Event()

    def hold() -> None:
        with state_lock(state, "apply"):
            holding.set()
            time.sleep(0.3)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    with state_lock(state, "apply", timeout=5):
        assert lock_path(state).exists()
    thread.join()


def test_timeout_expires_with_a_clear_message(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with (
        state_lock(state, "apply"),
        pytest.raises(StateLockedError, match="after waiting 0.2s"),
        state_lock(state, "apply", timeout=0.2),
    ):
        pass


def test_stale_lock_from_a_dead_process_suggests_force_unlock(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    import socket

    lock_path(state).write_text(
        json.dumps(
            {
                "id": "abc",
                "pid": 2**22 + 12345,
                "who": "x@y",
                "host": socket.gethostname(),
                "operation": "apply",
            }
        )
    )
    with pytest.raises(StateLockedError, match="force-unlock abc"), state_lock(state, "apply"):
        pass
    with pytest.raises(StateError, match="does not match"):
        force_unlock(state, "wrong")
    force_unlock(state, "abc")
    with state_lock(state, "apply"):
        pass


def test_force_unlock_without_a_lock_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="not locked"):
        force_unlock(tmp_path / "state.json", "abc")
