"""Acceptor: turns a message that passed every check into a durable, signed spool file
and the 250 that promises it will be delivered.

It adds Date and Message-ID when missing, DKIM-signs with the sender domain's newest
ACTIVE key (for a null-sender message, the domain nullsender.py picks), prepends
Received, stores the message with its envelope (the 250 is sent only once it is on
disk), wakes the delivery worker and logs `accepted`. (Its recipients were counted
against the daily limit at RCPT.)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from relay import message as msg
from relay import nullsender
from relay import replies as R
from relay.backlog import Backlog
from relay.contract.addresses import domain_of
from relay.contract.policy import Credential, RelayPolicy, SigningKey
from relay.dkimsign import DkimSigner
from relay.events import EventLog
from relay.metrics import Metrics, count_message
from relay.spool import Spool, new_queue_id


@dataclass(frozen=True)
class Submission:
    """A message that passed every check, and what its Received header records."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    fields: list[tuple[str, str]]
    sender: str  # the From: header address, normalised
    credential: Credential
    peer: str
    helo: str
    tls: str | None  # the TLS version, when the session is encrypted
    body: str | None = None  # MAIL's BODY= (7BIT or 8BITMIME), passed on to the next hop
    dkim_domain: str | None = None  # signed for this domain, not the From: one (nullsender.py)


class Signers:
    """One DkimSigner per key, loaded (tens of ms for RSA) off the event loop, once."""

    def __init__(self) -> None:
        self._signers: dict[tuple[str, str, str], DkimSigner] = {}

    async def get(self, key: SigningKey) -> DkimSigner:
        ident = (key.domain, key.selector, key.created_at)
        signer = self._signers.get(ident)
        if signer is None:
            loop = asyncio.get_running_loop()
            signer = await loop.run_in_executor(
                None, DkimSigner, key.domain, key.selector, key.algorithm, key.private_key
            )
            self._signers[ident] = signer
        return signer


SIGN_INLINE_BYTES = 256 * 1024  # smaller messages are signed on the loop (~0.1 ms per 2 KB)


@dataclass
class Acceptor:
    signers: Signers
    spool: Spool
    log: EventLog
    metrics: Metrics | None = None
    on_accept: Callable[[str], None] = lambda _queue_id: None
    backlog: Backlog | None = None

    async def _backpressure(self, policy: RelayPolicy, sub: Submission) -> str | None:
        """Hold the reply while the queue is long; the 451 when it is full."""
        if self.backlog is None:
            return None
        delay, full = self.backlog.pressure(policy.relay.delivery)
        if full is not None:
            self.log.emit("queue_full", peer=sub.peer, queued=full)
            return R.S451_QUEUE_FULL.format(queued=full)
        if delay:
            await asyncio.sleep(delay)  # the client waits; delivery catches up
        return None

    async def _signed(self, key: SigningKey, message: bytes, now: float) -> bytes:
        signer = await self.signers.get(key)
        if len(message) < SIGN_INLINE_BYTES:
            return signer.sign(message, int(now)) + message
        # A big message is hashed off the event loop: other sessions go on.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, signer.sign, message, int(now)) + message

    async def accept(self, policy: RelayPolicy, sub: Submission) -> str:
        refused = await self._backpressure(policy, sub)
        if refused is not None:
            return refused
        now = time.time()
        queue_id = new_queue_id()
        hostname = policy.relay.hostname
        added = msg.added_headers(sub.fields, hostname, now)
        message = added + sub.data
        domain = domain_of(sub.sender) if sub.dkim_domain is None else sub.dkim_domain
        key = policy.signing.get(domain)
        if key is not None:
            message = await self._signed(key, message, now)
        received = msg.received_header(
            hostname=hostname,
            helo=sub.helo,
            peer=sub.peer,
            tls=sub.tls,
            queue_id=queue_id,
            user=sub.credential.user,
            now=now,
        )
        envelope = {
            "mail_from": sub.mail_from,
            "rcpt_tos": list(sub.rcpt_tos),
            "user": sub.credential.user,
            "username": sub.credential.username,
            "from": sub.sender,
            "received_at": now,
            "peer": sub.peer,
            "dkim": f"{domain}/{key.selector}" if key else None,  # what plan waits on
        }
        if sub.body is not None:
            envelope["body"] = sub.body
        try:
            await self.spool.store(queue_id, envelope, received + message)
        except Exception as exc:
            self.log.emit("spool_error", queue_id=queue_id, error=str(exc))
            return R.S451_LOCAL_ERROR
        count_message(self.metrics, policy.label_domains, sub.sender, "accepted")
        self.on_accept(queue_id)
        self.log.emit(
            "accepted",
            queue_id=queue_id,
            peer=sub.peer,
            user=sub.credential.user,
            sender=sub.sender,
            recipients=len(sub.rcpt_tos),
            rcpt_tos=list(sub.rcpt_tos),  # what `relay trace ADDRESS` finds it by
            message_id=msg.message_id(sub.fields, added),
            size=len(received) + len(message),
            dkim=f"{domain}/{key.selector}" if key else None,
            **({} if sub.mail_from else {"mail_from": nullsender.NULL}),
            **({} if key else {"unsigned": f"no ACTIVE DKIM selector for {domain}"}),
        )
        return R.S250_QUEUED.format(queue_id=queue_id)
