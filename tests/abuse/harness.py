"""What every attack test measures while it runs: the relay's resident memory, sampled
from /proc, and a legitimate application sending through the relay at the same time
(each of its messages must be accepted, in under a second)."""

from __future__ import annotations

import contextlib
import json
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.relayproc import RelayProcess, message

RSS_LIMIT_MB = 300.0
LATENCY_LIMIT_S = 1.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


class RssSampler:
    """The relay's peak resident memory while the `with` block runs."""

    def __init__(self, relay: RelayProcess, every: float = 0.05) -> None:
        assert relay.proc is not None
        self.pid = relay.proc.pid
        self.every = every
        self.start_mb = rss_mb(self.pid)
        self.peak_mb = self.start_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.end_mb = rss_mb(self.pid)


class LegitClient:
    """An application with its own credential and source address, sending one message
    every `every` seconds on a kept session while the attack runs."""

    def __init__(
        self,
        relay: RelayProcess,
        login: str = "billing",
        sender: str = "billing@example.com",
        source: str = "127.0.0.200",
        every: float = 0.2,
    ) -> None:
        self.relay, self.login, self.sender, self.source = relay, login, sender, source
        self.every = every
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client: smtplib.SMTP | None = None
        for n in range(10_000):  # bounded; stopped long before
            if self._stop.is_set():
                break
            started = time.monotonic()
            try:
                if client is None:
                    client = self.relay.smtp(login=self.login, source=self.source)
                refused = client.sendmail(
                    self.sender, [f"legit{n}@example.org"], message(self.sender)
                )
                if refused:
                    self.failures.append(repr(refused))
            except (smtplib.SMTPException, OSError) as exc:
                self.failures.append(repr(exc))
                client = None
            self.latencies.append(time.monotonic() - started)
            self._stop.wait(self.every)
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()

    def __enter__(self) -> LegitClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        deadline = time.monotonic() + 10  # a short attack: still see a few of its messages
        while len(self.latencies) < 3 and not self.failures and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(30)

    def check(self) -> None:
        assert self.failures == [], self.failures[:5]
        assert len(self.latencies) >= 3, "the legitimate client barely ran"
        assert max(self.latencies) < LATENCY_LIMIT_S, sorted(self.latencies)[-5:]


def attack(relay: RelayProcess, name: str, n: int = 1, login: str = "app") -> dict[str, Any]:
    """Run tests/abuse/attacks.py NAME in its own process against `relay`; what it saw."""
    cred = relay.creds[login]
    result = subprocess.run(
        [sys.executable, "-m", "tests.abuse.attacks", name, str(relay.port),
         cred["username"], cred["password"], str(n)],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    seen: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return seen
