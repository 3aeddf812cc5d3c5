"""What one delivery attempt's reply means for a recipient, and everything that follows
from it: the recipient's state (delivered, bounced, deferred until), the suppression list
(fed by hard bounces about the address and by soft bounces that reached max_age), the
events and the metrics."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from relay.contract.addresses import normalize
from relay.contract.settings import DeliverySettings
from relay.events import EventLog
from relay.metrics import Metrics
from relay.outbound import Reply
from relay.queuestate import BOUNCED, DELIVERED, RecipientState
from relay.spool import SpooledMessage
from relay.store.interfaces import SuppressionList


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential: base, 2*base, 4*base ... up to cap, each with +-20 % jitter."""
    delay: float = min(cap, base * 2.0 ** max(0, attempts - 1))
    return delay * rng.uniform(0.8, 1.2)


class Outcomes:
    def __init__(
        self,
        suppressions: SuppressionList,
        log: EventLog,
        metrics: Metrics | None,
        clock: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self.suppressions = suppressions
        self.log = log
        self.metrics = metrics
        self.clock = clock
        self.rng = rng

    def record(
        self,
        spooled: SpooledMessage,
        rcpt: str,
        entry: RecipientState,
        reply: Reply,
        host: str,
        settings: DeliverySettings,
        bounces_come_back: bool = False,
    ) -> None:
        """What `reply` to one attempt means for its recipient, recorded in `entry`. When
        bounce messages come back (a VERP return path), a 250 does not prove the mailbox
        took it, so it does not reset the address's soft-bounce count."""
        now = self.clock()
        entry.attempts += 1
        entry.last_reply = str(reply)
        address, qid = normalize(rcpt), spooled.queue_id
        base = {
            "queue_id": qid,
            "sender_domain": sender_domain(spooled),
            "recipient": rcpt,
            "host": host,
            "reply": str(reply),
            "attempts": entry.attempts,
        }
        if reply.ok:
            entry.status = DELIVERED
            if not bounces_come_back:
                self.suppressions.delivered(address)
            latency = now - spooled.envelope["received_at"]
            self.log.emit("delivered", **base, latency=round(latency, 3))
            self.count(spooled, "delivered")
            if self.metrics is not None:
                self.metrics.latency.observe(latency)
        elif reply.permanent:
            self._bounce(spooled, entry, base, "hard")
            # Only a failure about the address suppresses it (not a 5xx at MAIL or DATA).
            if reply.recipient_specific and self.suppressions.hard_bounce(address, str(reply), qid):
                self.log.emit(
                    "suppressed", queue_id=qid, sender_domain=base["sender_domain"],
                    recipient=rcpt, reason="HARDBOUNCE", added=True,
                )  # fmt: skip
        elif now - spooled.envelope["received_at"] >= settings.max_age:
            self._bounce(spooled, entry, base, "soft")
            count, added = self.suppressions.soft_bounce(address, str(reply), qid)
            if added:
                self.log.emit(
                    "suppressed", queue_id=qid, sender_domain=base["sender_domain"],
                    recipient=rcpt, reason="SOFTBOUNCE", soft_bounces=count, added=True,
                )  # fmt: skip
        else:
            entry.next_attempt = now + backoff(
                entry.attempts, settings.retry_base, settings.retry_max, self.rng
            )
            self.log.emit("deferred", **base, next_attempt=round(entry.next_attempt, 3))
            self.count(spooled, "deferred")

    def _bounce(
        self, spooled: SpooledMessage, entry: RecipientState, base: dict[str, Any], kind: str
    ) -> None:
        entry.status = BOUNCED
        entry.bounce = kind
        self.log.emit("bounced", **base, bounce=kind)
        self.count(spooled, "bounced")
        if self.metrics is not None:
            self.metrics.bounces.labels(sender_domain(spooled), kind, "delivery").inc()

    def count(self, spooled: SpooledMessage, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.recipients.labels(sender_domain(spooled), outcome).inc()


def sender_domain(spooled: SpooledMessage) -> str:
    """The domain of the message's sender (lower case; '' for the null sender): every
    outcome event carries it, so a report needs no join with the `accepted` line."""
    return str(spooled.envelope.get("from", "")).rpartition("@")[2].lower()
