"""Password checks (issue #13): a burst of first logins runs at most `parallel` scrypt
checks at once (each holds 16 MiB) and queues the rest; every check still answers right."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import relay.auth as auth
from relay.auth import PasswordChecker
from relay.contract.passwords import hash_password
from relay.contract.policy import Credential, RelayPolicy


def _policy(count: int) -> RelayPolicy:
    creds = {
        f"user{i}": Credential(f"user{i}", "app", f"c{i}", hash_password(f"secret-{i}"))
        for i in range(count)
    }
    return RelayPolicy(serial=1, lineage="test", credentials=creds)


def test_a_burst_of_first_logins_runs_at_most_parallel_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lock = threading.Lock()
    running, peak = 0, 0
    real = auth.verify_password

    def counted(password: str, encoded: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.02)  # hold the slot a little longer, so overlaps show
            return real(password, encoded)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(auth, "verify_password", counted)
    policy = _policy(12)
    checker = PasswordChecker(parallel=2)

    async def burst() -> list[Credential | None]:
        right = [checker.check(policy, f"user{i}", f"secret-{i}") for i in range(10)]
        wrong = [checker.check(policy, f"user{i}", "guess") for i in (10, 11)]
        return await asyncio.gather(*right, *wrong)

    results = asyncio.run(burst())
    assert [r.username if r else None for r in results] == [f"user{i}" for i in range(10)] + [
        None,
        None,
    ]
    assert peak == 2  # queued, not refused: all twelve were checked, two at a time
