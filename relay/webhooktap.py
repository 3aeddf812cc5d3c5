"""The event log's tap that feeds the webhook outbox: each relay event a webhook asked
for becomes one row for it. On the event loop the tap only picks the records and queues
them; a thread of its own writes what was queued every FLUSH_EVERY seconds in one SQLite
transaction (no network, no fsync), so a burst of mail costs the loop microseconds per
event, not a commit each. When the relay stops (`stopping`), what is queued is written
and every later record (a delivery finishing in the grace period) is written at once;
only a process killed outright can lose the last FLUSH_EVERY seconds of events. A
webhook holding `max_pending` rows gets no more: the event is dropped, counted, and
said in a `webhook_dropped` event at most once a minute. The tap never raises (the
event log would drop it) and ignores the events it logs itself.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from relay import webhookpayload
from relay.contract.policy import RelayPolicy
from relay.contract.settings import Webhook
from relay.events import EventLog
from relay.metrics import Metrics
from relay.webhookoutbox import OutboxWriter, transaction

LOG_EVERY = 60.0  # seconds between two webhook_dropped (or webhook_error) events
FLUSH_EVERY = 0.05  # seconds between two writes of what the tap queued
QUEUED_MAX = 100_000  # records waiting for the writer thread; beyond, they are dropped


class WebhookTap:
    def __init__(
        self,
        path: Path,
        policy: Callable[[], RelayPolicy],
        log: EventLog,
        metrics: Metrics | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.policy = policy
        self.log = log
        self.metrics = metrics
        self.clock = clock
        self._writer: OutboxWriter | None = None
        self._lock = threading.Lock()  # a record may come from another thread
        self._counting = threading.Lock()  # the drop counts, kept by both threads
        self._dropped: Counter[str] = Counter()  # since the last webhook_dropped
        self._dropped_at = -LOG_EVERY
        self._errors, self._error_at = 0, -LOG_EVERY
        self._queued: deque[tuple[dict[str, Any], str | None]] = deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.stopping = False

    def __call__(self, record: dict[str, Any]) -> None:
        event = record.get("event")
        policy = self.policy()
        if event == "accepted":  # remembered for the sender and Message-ID of later events
            if policy.relay.webhooks and len(self._queued) < QUEUED_MAX:
                self._queue(record, None)
            return
        kind = webhookpayload.event_type(record)
        if kind is None:
            return  # webhook_* events among them: the tap never feeds itself
        wanted = [w for w in policy.relay.webhooks if kind in w.events]
        if not wanted:
            return
        if len(self._queued) >= QUEUED_MAX:
            for hook in wanted:
                self._drop(hook.name)
            return
        self._queue(record, kind)
        self.flush()

    def _queue(self, record: dict[str, Any], kind: str | None) -> None:
        self._queued.append((record, kind))
        if self.stopping:
            self.write_queued()
        elif self._thread is None:
            self._thread = threading.Thread(target=self._writing, name="webhook-tap", daemon=True)
            self._thread.start()

    def _writing(self) -> None:
        while True:
            self._wake.wait(FLUSH_EVERY)
            try:
                self.write_queued()
            except Exception as exc:  # a bug must not end the writing for good
                self._failed(exc)

    def write_queued(self) -> None:
        """Write what is queued, in one transaction (the writer thread, and at stop; both
        may drain at once, so each pop is its own)."""
        batch = []
        while True:
            try:
                batch.append(self._queued.popleft())
            except IndexError:
                break
        if batch and not self._locked(self._write, batch):
            for _, kind in batch:  # each webhook that wanted one lost it
                for hook in self.policy().relay.webhooks if kind else ():
                    if kind in hook.events:
                        self._drop(hook.name)

    def stop(self) -> None:
        """The relay is stopping: write what is queued, and each later record at once."""
        self.stopping = True
        self.write_queued()

    def _write(self, writer: OutboxWriter, batch: list[tuple[dict[str, Any], str | None]]) -> None:
        policy = self.policy()
        with transaction(writer.db):
            for record, kind in batch:
                if kind is None:
                    self._remember(writer, record)
                    continue
                wanted = [w for w in policy.relay.webhooks if kind in w.events]
                if wanted:
                    self._put(writer, record, kind, policy, wanted)

    def _locked(self, fn: Callable[..., None], *args: Any) -> bool:
        try:
            with self._lock:
                if self._writer is None:
                    self._writer = OutboxWriter(self.path)
                fn(self._writer, *args)
            return True
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
            return False

    def _remember(self, writer: OutboxWriter, record: dict[str, Any]) -> None:
        if record.get("queue_id"):
            writer.remember(record["queue_id"], record.get("sender"), record.get("message_id"))

    def _put(
        self,
        writer: OutboxWriter,
        record: dict[str, Any],
        kind: str,
        policy: RelayPolicy,
        wanted: list[Webhook],
    ) -> None:
        qid = record.get("queue_id")
        message = writer.message(qid) if isinstance(qid, str) else None
        body = webhookpayload.payload(record, kind, policy.relay.hostname, message)
        data, created = webhookpayload.encode(body), time.time()
        rows = [(w.name, w.max_pending, body["id"], data, created) for w in wanted]
        for name in writer.put(rows):
            self._drop(name)

    def _drop(self, name: str) -> None:
        with self._counting:
            self._dropped[name] += 1
        if self.metrics is not None:
            self.metrics.webhook_events.labels(name, "dropped").inc()

    def _failed(self, exc: Exception) -> None:
        """The outbox cannot be written (a full disk, a lock held too long): the events
        are dropped and counted; the next record opens the file again."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        self._errors += 1
        now = self.clock()
        if now - self._error_at >= LOG_EVERY:
            self.log.emit("webhook_error", error=f"{type(exc).__name__}: {exc}"[:500],
                          events=self._errors)  # fmt: skip
            self._errors, self._error_at = 0, now

    def flush(self, force: bool = False) -> None:
        """Say what was dropped, when there is something and a minute has passed."""
        now = self.clock()
        if not self._dropped or (now - self._dropped_at < LOG_EVERY and not force):
            return
        with self._counting:
            dropped, self._dropped = self._dropped, Counter()
        self._dropped_at = now
        bounds = {w.name: w.max_pending for w in self.policy().relay.webhooks}
        for name, count in sorted(dropped.items()):
            self.log.emit(
                "webhook_dropped", webhook=name, dropped=count, max_pending=bounds.get(name)
            )

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
