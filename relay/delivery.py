"""The delivery worker: spooled messages to their recipients' servers, with retries,
bounces into the suppression list, events and metrics.

Recipients are grouped by destination domain (or all go to the smarthost). Each
attempt's result is recorded per recipient before the next one starts, so a restart
never delivers twice to a recipient that already got 250.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from relay.contract.addresses import normalize
from relay.contract.policy import RelayPolicy
from relay.contract.settings import DeliverySettings
from relay.contract.suppression import suppression_key
from relay.events import EventLog
from relay.metrics import Metrics
from relay.mtasts import MtaSts
from relay.mx import MxResolver
from relay.outbound import Reply
from relay.outcomes import Outcomes, sender_domain
from relay.pacer import WAIT_IN_PLACE, Pacer
from relay.queueindex import QueueIndex, Removals
from relay.queuestate import BOUNCED, MessageState, load_state, save_state
from relay.router import Router, all_of
from relay.sessions import SessionCache
from relay.slowdown import SlowDown
from relay.spool import SpooledMessage, read_spool_file
from relay.store.interfaces import SuppressionList
from relay.tlspolicy import TlsPolicies
from relay.verp import Verp, load_key


class DeliveryWorker:
    def __init__(
        self,
        queue_dir: Path,
        policy: Callable[[], RelayPolicy],
        suppressions: SuppressionList,
        log: EventLog,
        metrics: Metrics | None = None,
        *,
        nameserver: str | None = None,
        port: int = 25,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        bounce_key: bytes | None = None,
        https_port: int = 443,
        rescan: float = 60.0,
    ) -> None:
        """`port` and `https_port` are where destinations' SMTP and MTA-STS servers
        listen (a test's servers on loopback); `rescan` is how often the queue folder is
        looked at for messages another process put there (see QueueIndex)."""
        self.queue_dir = queue_dir
        self.policy = policy
        self.suppressions = suppressions
        self.log = log
        self.metrics = metrics
        self.clock = clock
        self.rng = rng or random.Random()
        mx = MxResolver(nameserver)
        self.sessions = SessionCache()  # outbound sessions kept for the next message
        sts = MtaSts(mx, https_port, clock)
        self.router = Router(policy, mx, self.sessions, TlsPolicies(sts, log, clock), port)
        # The fleet's bounce key (RelayStores.bounce_key), else the data folder's own.
        self.verp = Verp(bounce_key or load_key(queue_dir.parents[1]))
        self.outcomes = Outcomes(suppressions, log, metrics, clock, self.rng)
        self._wake = asyncio.Event()
        self._busy: set[str] = set()
        # When each known message is next due: a deferred backlog is not re-read every pass.
        self.index = QueueIndex(queue_dir, time.monotonic, rescan)
        self.removals = Removals(queue_dir)
        self._tasks: set[asyncio.Future[int]] = set()
        self._per_destination: dict[str, asyncio.Semaphore] = {}
        self.slowdown = SlowDown(clock)  # destinations that answered 421 wait a while
        self.pacer = Pacer(clock)  # destinations with a rate get their turns
        self._overall: asyncio.Semaphore | None = None

    def wake(self, queue_id: str | None = None) -> None:
        """Something to deliver: `queue_id`, just spooled by this process."""
        if queue_id is not None:
            self.index.add(queue_id)
        self._wake.set()

    async def run(self, stop: asyncio.Event, interval: float = 1.0) -> None:
        while not stop.is_set():
            self._wake.clear()  # before the pass: a wake during it starts the next one at once
            try:
                await self.run_once(wait=False)
            except Exception as exc:
                self.log.emit("delivery_error", error=f"{type(exc).__name__}: {exc}")
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            await self.sessions.sweep()
        if self._tasks:  # deliveries in progress finish (the caller bounds the wait)
            await asyncio.wait(set(self._tasks))
        await self.removals.drain()
        await self.sessions.sweep(everything=True)

    async def run_once(self, wait: bool = True) -> int:
        """Attempt every message with recipients due now; returns how many were started.

        With wait=False (the serving loop) messages are left running as tasks, so one slow
        destination does not hold up the next pass; tests wait for them."""
        settings = self.policy().relay.delivery
        self.sessions.per_key = settings.per_destination  # one kept per possible session
        if self._overall is None:
            self._overall = asyncio.Semaphore(settings.concurrency)
        self.index.refresh(force=wait, leaving=self.removals.leaving)
        self._gauge()
        due = self.index.due(self.clock(), self._busy)
        for queue_id in due:
            self._busy.add(queue_id)  # claimed now, before its task runs
        tasks = [asyncio.ensure_future(self._message(q, settings)) for q in due]
        if wait:  # one pass, then nothing left open
            started = sum(await asyncio.gather(*tasks))
            await self.removals.drain()
            await self.sessions.sweep(everything=True)
            return started
        for task in tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(tasks)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_size.set(len(self.index))
            self.metrics.oldest.set(self.index.oldest_age(time.time()))

    async def _message(self, queue_id: str, settings: DeliverySettings) -> int:
        try:
            return await self._deliver_message(queue_id, settings)
        except Exception as exc:
            self.log.emit("delivery_error", queue_id=queue_id, error=f"{type(exc).__name__}: {exc}")
            self.index.set_due(queue_id, self.clock() + settings.retry_base)
            return 0
        finally:
            self._busy.discard(queue_id)

    async def _deliver_message(self, queue_id: str, settings: DeliverySettings) -> int:
        try:
            spooled = read_spool_file(self.queue_dir / f"{queue_id}.msg")
        except FileNotFoundError:
            self.index.discard(queue_id)
            return 0
        envelope = spooled.envelope
        state = load_state(self.queue_dir, queue_id) or MessageState.new(envelope["rcpt_tos"])
        due = state.due(self.clock())
        if not due:
            self.index.set_due(queue_id, state.next_due() or 0.0)
            return 0
        groups: dict[str, list[str]] = defaultdict(list)
        smarthost = self.policy().relay.smarthost
        for rcpt in due:
            groups["smarthost" if smarthost else rcpt.rpartition("@")[2].lower()].append(rcpt)
        await asyncio.gather(
            *(self._group(spooled, state, dest, rcpts, settings) for dest, rcpts in groups.items())
        )
        if state.done:
            self.index.discard(queue_id)
            self.removals.add(queue_id)
            self.log.emit("completed", queue_id=queue_id)
        else:
            self.index.set_due(queue_id, state.next_due() or 0.0)
        return 1

    async def _group(
        self,
        spooled: SpooledMessage,
        state: MessageState,
        dest: str,
        rcpts: list[str],
        settings: DeliverySettings,
    ) -> None:
        live = [r for r in rcpts if not self._suppressed(spooled, state, r)]
        wait = self._turn(spooled, state, dest, live, settings) if live else None
        if wait is None:
            live = []  # back to the queue until the destination's turn (or nothing to do)
        elif wait:
            await asyncio.sleep(wait)
        if live:
            semaphore = self._per_destination.setdefault(
                dest, asyncio.Semaphore(settings.concurrency_for(dest))
            )
            assert self._overall is not None
            async with self._overall, semaphore:
                replies, host = await self._paced_attempt(spooled, dest, live, settings)
            verp = self._return_path(spooled) is not None
            for rcpt in live:
                self.outcomes.record(
                    spooled, rcpt, state.recipients[rcpt], replies[rcpt], host, settings, verp
                )
        if not state.done:  # a finished message is removed instead: one fsync saved
            save_state(self.queue_dir, spooled.queue_id, state)

    def _turn(
        self,
        spooled: SpooledMessage,
        state: MessageState,
        dest: str,
        live: list[str],
        settings: DeliverySettings,
    ) -> float | None:
        """Seconds to wait for `dest`'s rate, or None when the message goes back to the
        queue until its turn (without an attempt counted against its recipients)."""
        rate = None if self.policy().relay.smarthost else settings.rule(dest).rate
        copies = len(live) if self._return_path(spooled) is not None else 1
        wait = self.pacer.turn(dest, rate, copies)
        if wait <= WAIT_IN_PLACE:
            return wait
        for rcpt in live:
            state.recipients[rcpt].next_attempt = self.clock() + wait
        return None

    async def _paced_attempt(
        self, spooled: SpooledMessage, dest: str, rcpts: list[str], settings: DeliverySettings
    ) -> tuple[dict[str, Reply], str]:
        """An attempt, unless `dest` asked to slow down (421) and its pause runs."""
        wait = self.slowdown.paused(dest)
        if wait:
            why = f"4.4.5 {dest} asked to slow down (421); paused {wait:.0f} s more"
            return all_of(rcpts, Reply(451, why, "local")), dest
        try:
            replies, host = await self._attempt(spooled, dest, rcpts, settings)
        except Exception as exc:
            why = f"4.3.0 delivery error: {type(exc).__name__}: {exc}"
            return all_of(rcpts, Reply(451, why, "local")), dest
        pause = self.slowdown.heard(dest, replies.values())
        if pause:
            self.log.emit("destination_paused", destination=dest, seconds=pause)
        return replies, host

    def _suppressed(self, spooled: SpooledMessage, state: MessageState, rcpt: str) -> bool:
        address = normalize(rcpt)
        declared = self.policy().suppressions.get(suppression_key(address))
        reason = self.suppressions.reason(address) or declared
        if reason is None:
            return False
        state.recipients[rcpt].status = BOUNCED
        state.recipients[rcpt].bounce = "suppressed"
        self.log.emit(
            "suppressed", queue_id=spooled.queue_id, sender_domain=sender_domain(spooled),
            recipient=rcpt, reason=reason,
        )  # fmt: skip
        self.outcomes.count(spooled, "suppressed")
        return True

    async def _attempt(
        self, spooled: SpooledMessage, dest: str, rcpts: list[str], settings: DeliverySettings
    ) -> tuple[dict[str, Reply], str]:
        """With a return path declared for the sending domain, each recipient gets its own
        VERP envelope sender (so its own transaction); else the application's sender."""
        return_path = self._return_path(spooled)
        if return_path is None:
            sender = spooled.envelope["mail_from"]
            return await self.router.send(sender, spooled, dest, rcpts, settings)
        replies: dict[str, Reply] = {}
        host = dest
        for rcpt in rcpts:
            sender = self.verp.address(spooled.queue_id, rcpt, return_path)
            one, host = await self.router.send(sender, spooled, dest, [rcpt], settings)
            replies.update(one)
        return replies, host

    def _return_path(self, spooled: SpooledMessage) -> str | None:
        """The return path domain declared for the message's sending domain, if any; never
        for a null-sender message (a bounce goes out with MAIL FROM:<>, nullsender.py)."""
        if spooled.envelope.get("mail_from") == "":
            return None
        sender_domain = str(spooled.envelope.get("from", "")).rpartition("@")[2].lower()
        declared = self.policy().domains.get(sender_domain)
        return declared.return_path or None if declared is not None else None
