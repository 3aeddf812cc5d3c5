"""The relay's webhooks (relay.webhooks in the policy): every worker taps its event log
into the outbox (webhooktap.py); worker 0 also sends it (webhooksender.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from relay.contract.policy import RelayPolicy
from relay.events import EventLog
from relay.metrics import Metrics
from relay.relayoptions import RelayOptions
from relay.webhookoutbox import OUTBOX_FILE
from relay.webhooksender import WebhookSender
from relay.webhooktap import WebhookTap

FLUSH_EVERY = 5.0  # seconds between two looks at what was dropped (logged once a minute)


class Webhooks:
    def __init__(
        self,
        options: RelayOptions,
        policy: Callable[[], RelayPolicy],
        log: EventLog,
        metrics: Metrics | None,
        *,
        sending: bool | None = None,
    ) -> None:
        """`sending`: also send (default: in worker 0 only). `relay deliver` taps without
        sending while a serving relay sends, and sends too when it retires a host."""
        self.path = path = options.data_dir / OUTBOX_FILE
        self.tap = WebhookTap(path, policy, log, metrics)
        log.tap(self.tap)
        sending = options.worker[0] == 0 if sending is None else sending
        self.sender = WebhookSender(path, policy, log, metrics) if sending else None

    async def run(self) -> None:
        """Until cancelled: send (worker 0), and say what the tap dropped."""
        sending = None
        if self.sender is not None:
            sending = asyncio.get_running_loop().create_task(self.sender.run())
        try:
            while True:
                await asyncio.sleep(FLUSH_EVERY)
                self.tap.flush()
        finally:
            if sending is not None:
                sending.cancel()
            self.tap.stop()  # what is queued is written; later events are written at once
            self.tap.flush(force=True)  # the tap itself goes on: rows stay for the next start

    async def wait_sent(self, timeout: float) -> int:
        """Write what the tap queued, then wait (at most `timeout` seconds) for the sender
        to empty the outbox; how many events are left in it."""
        self.tap.stop()
        deadline = time.monotonic() + timeout
        while True:
            left = await asyncio.to_thread(_waiting, self.path)
            if left == 0 or time.monotonic() >= deadline:
                return left
            await asyncio.sleep(0.5)


def _waiting(path: Path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(path, timeout=5.0)
    try:
        row = db.execute("SELECT coalesce(sum(n), 0) FROM pending").fetchone()
        return int(row[0])
    except sqlite3.Error:
        return 0
    finally:
        db.close()
