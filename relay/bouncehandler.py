"""The MX listener (`HOST:PORT/mx`): where bounce messages and complaints come back.

No AUTH and no relaying: a recipient must be a VERP address (relay/verp.py) at a return
path domain of the applied policy, anything else gets 550 5.7.1 at RCPT. At the end of
DATA the report is read (relay/reports.py); every recipient it names whose MAC matches
is fed to the suppression list by OCI's rule (a hard bounce suppresses at once, the
fourth soft-bounced message does, a complaint suppresses as COMPLAINT). A report whose
recipients match nothing is refused (550 5.7.1: a forged or foreign bounce); one that
cannot be read is kept in `bounces/unreadable/` for inspection, counted, and accepted.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from relay import replies as R
from relay.contract.addresses import normalize
from relay.contract.policy import RelayPolicy
from relay.contract.suppression import SuppressionReason
from relay.events import EventLog
from relay.metrics import Metrics
from relay.reports import Entry, Report, parse_report
from relay.smtp import peer_of
from relay.store.interfaces import SuppressionList
from relay.verp import Token, Verp, parse_token

SEEN_SOFT = 10_000  # (queue id, recipient) soft bounces remembered: one count per message


class BounceHandler:
    def __init__(
        self,
        policy: Callable[[], RelayPolicy],
        verp: Verp,
        suppressions: SuppressionList,
        log: EventLog,
        folder: Path,
        metrics: Metrics | None = None,
    ) -> None:
        self.policy = policy
        self.verp = verp
        self.suppressions = suppressions
        self.log = log
        self.folder = folder  # bounces/unreadable/ goes here
        self.unreadable = 0
        self.metrics = metrics
        self._soft_seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if parse_token(address, frozenset(self.policy().return_paths)) is None:
            self.log.emit("mx_refused", peer=peer_of(session), recipient=address[:200])
            return R.S550_NOT_A_BOUNCE_ADDRESS
        if envelope.rcpt_tos:
            return R.S452_ONE_BOUNCE_ADDRESS  # one message, one token
        envelope.rcpt_tos.append(address)
        return R.S250_RECIPIENT_OK

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        token = parse_token(envelope.rcpt_tos[0], frozenset(self.policy().return_paths))
        data: bytes = envelope.original_content or b""
        if token is None:  # the policy changed since RCPT
            return R.S550_NOT_A_BOUNCE_ADDRESS
        report = parse_report(data)
        if not report.entries:
            self._keep(data, peer_of(session), report.format)
            return R.S250_BOUNCE_KEPT
        matched = [(e, a) for e in report.entries if (a := self._recipient(token, e))]
        if not matched:
            self.log.emit("bounce_refused", peer=peer_of(session), queue_id=token.queue_id)
            return R.S550_BOUNCE_NOT_OURS
        # The sending domain owns the return path the bounce came back to.
        sender_domain = self.policy().return_paths.get(
            envelope.rcpt_tos[0].rpartition("@")[2].lower(), "other"
        )
        for entry, address in matched:
            if self._learn(token, entry, address, report, sender_domain):
                self._count(sender_domain, entry.kind)
        return R.S250_BOUNCE_TAKEN

    def _recipient(self, token: Token, entry: Entry) -> str | None:
        return next((normalize(a) for a in entry.candidates if self.verp.verify(token, a)), None)

    def _learn(
        self, token: Token, entry: Entry, address: str, report: Report, sender_domain: str
    ) -> bool:
        """Feed one reported recipient to the suppression list; False for a repeated
        soft-bounce notice (it counts once)."""
        fields: dict[str, Any] = {
            "queue_id": token.queue_id, "sender_domain": sender_domain, "recipient": address,
        }  # fmt: skip
        if entry.kind == "complaint":
            added = self.suppressions.add(
                address, SuppressionReason.COMPLAINT, queue_id=token.queue_id,
                note=f"feedback report: {report.feedback_type}",
            )  # fmt: skip
            self.log.emit("complaint", **fields, feedback_type=report.feedback_type, added=added)
            return True
        reply = f"{entry.status} {entry.detail}".strip()
        if entry.kind == "hard":
            added = self.suppressions.hard_bounce(address, reply, token.queue_id)
            self.log.emit("bounce_received", **fields, bounce="hard", status=entry.status,
                          added=added, format=report.format)  # fmt: skip
            return True
        key = (token.queue_id, address)
        if key in self._soft_seen:  # a second notice about the same message counts once
            return False
        self._soft_seen[key] = None
        if len(self._soft_seen) > SEEN_SOFT:
            self._soft_seen.popitem(last=False)
        count, added = self.suppressions.soft_bounce(address, reply, token.queue_id)
        self.log.emit("bounce_received", **fields, bounce="soft", status=entry.status,
                      soft_count=count, added=added, format=report.format)  # fmt: skip
        return True

    def _count(self, sender_domain: str, kind: str) -> None:
        if self.metrics is None:
            return
        if kind == "complaint":
            self.metrics.complaints.labels(sender_domain).inc()
        else:
            self.metrics.bounces.labels(sender_domain, kind, "report").inc()

    def _keep(self, data: bytes, peer: str, fmt: str) -> None:
        folder = self.folder / "bounces" / "unreadable"
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{time.time_ns()}-{os.getpid()}.eml"
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        self.unreadable += 1
        self.log.emit("bounce_unreadable", peer=peer, file=name, format=fmt, size=len(data))
