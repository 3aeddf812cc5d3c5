"""Worker 0's webhook sender: for each webhook of the policy in force (read again at every
pass, so a reload adds or removes one without a restart), the oldest due rows of the
outbox, up to 4 requests in flight, each POSTed signed on a thread of its own (a dead
or slow endpoint never holds the event loop, and a daemon thread never holds a
shutdown). A 2xx deletes the row; anything else keeps it, rescheduled with backoff (5 s
doubling to 10 minutes, with jitter), and when a whole batch failed the webhook waits
too. Rows older than 3 days are dropped; a missing secret sends nothing (never
unsigned). Failures are logged once a minute per webhook at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from relay import webhookhttp
from relay.contract.policy import RelayPolicy
from relay.contract.settings import Webhook
from relay.events import EventLog
from relay.metrics import Metrics
from relay.webhookoutbox import OutboxReader, Row
from relay.webhookpayload import headers

IN_FLIGHT = 4
POLL = 0.5  # seconds between two looks for due rows
GAUGE_EVERY, TIDY_EVERY, CHECKPOINT_EVERY = 5.0, 60.0, 1.0
MAX_AGE = 3 * 86_400.0
RETRY_BASE, RETRY_MAX = 5.0, 600.0
LOG_EVERY = 60.0
T = TypeVar("T")


def backoff(attempts: int, rng: random.Random) -> float:
    """5 s, 10 s, 20 s ... up to 10 minutes, each with +-20 % jitter."""
    return min(RETRY_MAX, RETRY_BASE * 2.0 ** max(0, attempts - 1)) * rng.uniform(0.8, 1.2)


@dataclass
class _Hook:
    """What the sender keeps about one webhook between passes."""

    paused_until: float = 0.0
    failing: bool = False  # a failure was logged and no success came since
    failed_at: float = -LOG_EVERY  # when the last webhook_failed was logged
    unlogged: int = 0  # failures since
    secret_missing: bool = False
    task: asyncio.Task[None] | None = None


class WebhookSender:
    def __init__(
        self,
        path: Path,
        policy: Callable[[], RelayPolicy],
        log: EventLog,
        metrics: Metrics | None,
        *,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.path = path
        self.policy = policy
        self.log = log
        self.metrics = metrics
        self.environ = environ
        self.clock = clock
        self.rng = rng or random.Random()
        self.hooks: dict[str, _Hook] = {}
        self.pending: dict[str, int] = {}
        self._reader: OutboxReader | None = None
        self._db = ThreadPoolExecutor(1, thread_name_prefix="webhook-db")
        self._seen: RelayPolicy | None = None  # the policy whose removed webhooks are gone
        self._gauge_at = self._tidy_at = self._checkpoint_at = 0.0
        self._errors, self._error_at = 0, -LOG_EVERY

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def run(self) -> None:
        """Send until cancelled (rows not yet sent stay for the next start)."""
        try:
            while True:
                try:
                    await self._pass(self.policy())
                except Exception as exc:  # a full disk, a bug: say so, and try again
                    self._error(exc)
                await asyncio.sleep(POLL)
        finally:
            self._stop()

    async def _pass(self, policy: RelayPolicy) -> None:
        if self._reader is None:
            if not (policy.relay.webhooks or self.path.exists()):
                return
            self._reader = await self._call(OutboxReader, self.path)
            await self._call(self._reader.retry_now)
        reader = self._reader
        if policy is not self._seen:
            await self._forget(reader, policy)
            self._seen = policy
        now = time.monotonic()
        if now >= self._gauge_at:
            await self._measure(reader, policy)
            self._gauge_at = now + GAUGE_EVERY
        if now >= self._tidy_at:
            await self._tidy(reader)
            self._tidy_at = now + TIDY_EVERY
        for hook in policy.relay.webhooks:
            self._start(reader, hook)
        if now >= self._checkpoint_at:
            await self._call(reader.checkpoint)
            self._checkpoint_at = now + CHECKPOINT_EVERY

    def _error(self, exc: BaseException) -> None:
        self._errors += 1
        now = time.monotonic()
        if now - self._error_at >= LOG_EVERY:
            self.log.emit("webhook_error", error=f"{type(exc).__name__}: {exc}"[:500],
                          errors=self._errors)  # fmt: skip
            self._error_at, self._errors = now, 0

    def _start(self, reader: OutboxReader, hook: Webhook) -> None:
        state = self.hooks.setdefault(hook.name, _Hook())
        if state.task is not None and not state.task.done():
            return
        if self.clock() < state.paused_until:
            return
        secret = self.environ.get(hook.secret_env, "")
        if not secret:
            if not state.secret_missing:
                pending = self.pending.get(hook.name)
                self.log.emit("webhook_secret_missing", webhook=hook.name,
                              secret_env=hook.secret_env, pending=pending)  # fmt: skip
                state.secret_missing = True
            return
        state.secret_missing = False
        state.task = asyncio.get_running_loop().create_task(self._drain(reader, hook.name, state))

    async def _drain(self, reader: OutboxReader, name: str, state: _Hook) -> None:
        """Send this webhook's due rows, IN_FLIGHT at a time, until none is due or a whole
        batch failed (then the webhook waits as long as those rows do). Each batch takes
        the webhook as the policy in force has it (a reload may change its URL)."""
        try:
            while True:
                hook = next((w for w in self.policy().relay.webhooks if w.name == name), None)
                secret = self.environ.get(hook.secret_env, "") if hook else ""
                if hook is None or not secret:
                    return
                if not await self._batch(reader, hook, secret.encode(), state):
                    return
        except Exception as exc:
            self._error(exc)
            state.paused_until = self.clock() + RETRY_BASE

    async def _batch(
        self, reader: OutboxReader, hook: Webhook, secret: bytes, state: _Hook
    ) -> bool:
        """Send one batch; whether to go on with the next one."""
        rows = await self._call(reader.due, hook.name, self.clock(), IN_FLIGHT)
        if not rows:
            return False
        results = await asyncio.gather(*(self._post(hook, secret, row) for row in rows))
        now = self.clock()
        pairs = list(zip(rows, results, strict=True))
        sent = [row[0] for row, error in pairs if error is None]
        failed = [(row, error) for row, error in pairs if error is not None]
        retry = [(row[0], now + backoff(row[3] + 1, self.rng)) for row, _ in failed]
        await self._call(reader.settle, sent, retry)
        self._count(hook.name, "sent", len(sent))
        self._count(hook.name, "retried", len(retry))
        if sent and state.failing:
            state.failing = False
            self.log.emit("webhook_recovered", webhook=hook.name)
        if failed:
            row, error = failed[0]
            self._failed(hook, state, row[3] + 1, str(error), len(failed))
        if not sent:
            state.paused_until = min(at for _, at in retry)
        return bool(sent)

    async def _post(self, hook: Webhook, secret: bytes, row: Row) -> str | None:
        """None when the endpoint took the event (2xx), else what went wrong."""
        _, event_id, body, _, _ = row
        sent = headers(event_id, body, secret, int(self.clock()))
        try:
            status = await asyncio.wait_for(
                webhookhttp.in_thread(webhookhttp.post, hook.url, body, sent, hook.timeout),
                hook.timeout + 5.0,  # the socket's timeout is per read: a total, too
            )
        except TimeoutError:
            return f"no answer in {hook.timeout:g} s"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        return None if 200 <= status < 300 else f"HTTP {status}"

    def _failed(self, hook: Webhook, state: _Hook, attempts: int, error: str, count: int) -> None:
        state.failing = True
        state.unlogged += count
        now = time.monotonic()
        if now - state.failed_at < LOG_EVERY:
            return
        self.log.emit(
            "webhook_failed", webhook=hook.name, endpoint=webhookhttp.endpoint(hook.url),
            error=error, attempts=attempts, failures=state.unlogged,
            pending=self.pending.get(hook.name),
        )  # fmt: skip
        state.failed_at, state.unlogged = now, 0

    def _count(self, name: str, outcome: str, n: int) -> None:
        if self.metrics is not None and n:
            self.metrics.webhook_events.labels(name, outcome).inc(n)

    async def _measure(self, reader: OutboxReader, policy: RelayPolicy) -> None:
        self.pending = await self._call(reader.pending)
        if self.metrics is not None:
            for hook in policy.relay.webhooks:
                self.metrics.webhook_outbox.labels(hook.name).set(self.pending.get(hook.name, 0))

    async def _forget(self, reader: OutboxReader, policy: RelayPolicy) -> None:
        """Delete the rows of webhooks the policy no longer has."""
        names = [w.name for w in policy.relay.webhooks]
        for name, count in sorted((await self._call(reader.forget, names)).items()):
            self.log.emit("webhook_removed", webhook=name, deleted=count)
        for name in set(self.hooks) - set(names):
            self._cancel(self.hooks.pop(name))

    async def _tidy(self, reader: OutboxReader) -> None:
        """Drop the rows older than MAX_AGE (counted and logged), forget old messages."""
        gone = await self._call(reader.expire, self.clock() - MAX_AGE)
        for name, count in sorted(gone.items()):
            self._count(name, "dropped", count)
            self.log.emit("webhook_expired", webhook=name, expired=count,
                          max_age=int(MAX_AGE))  # fmt: skip
        await self._call(reader.tidy, self.clock())

    def _cancel(self, state: _Hook) -> None:
        if state.task is not None:
            state.task.cancel()

    def _stop(self) -> None:
        for state in self.hooks.values():
            self._cancel(state)
        if self._reader is not None:
            with contextlib.suppress(RuntimeError):
                self._db.submit(self._reader.close)
        self._db.shutdown(wait=False, cancel_futures=True)
