"""Real SMTP servers standing in for recipients' MX hosts (aiosmtpd, on loopback).

Each records what it received. Replies are chosen per recipient: addresses in `hard`
get 550 at RCPT, those in `soft` get 451; everything else is accepted.
"""

from __future__ import annotations

import gc
import ssl
import sys
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    mail_options: list[str] = field(default_factory=list)


@dataclass
class Recorder:
    hard: set[str] = field(default_factory=set)
    soft: set[str] = field(default_factory=set)
    slow_down: set[str] = field(default_factory=set)  # 421 at RCPT: the server's way to say so
    messages: list[Received] = field(default_factory=list)
    sessions: int = 0  # EHLOs seen: one per SMTP session (a kept session says it once)
    pipelining: bool = False  # offer PIPELINING (aiosmtpd reads pipelined commands in order)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        if self.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.hard:
            return "550 5.1.1 No such user here"
        if address in self.soft:
            return "451 4.2.1 Mailbox busy, try again later"
        if address in self.slow_down:
            return "421 4.7.0 Too many messages from you, slow down"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
    ) -> str:
        self.messages.append(
            Received(
                envelope.mail_from or "",
                list(envelope.rcpt_tos),
                envelope.original_content or b"",
                session.ssl is not None,
                list(envelope.mail_options),
            )
        )
        return "250 2.0.0 Delivered"

    def copies_for(self, address: str) -> int:
        return sum(address in m.rcpt_tos for m in self.messages)


class Destination:
    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.recorder = Recorder()
        self.host, self.port = host, port
        self.controller = Controller(
            self.recorder, hostname=host, port=port, server_hostname=f"mx.{host}", tls_context=tls
        )

    def start(self) -> Destination:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if getattr(self, "running", False):
            self.controller.stop()
            self.running = False


def collect_stopped_servers() -> None:
    """Collect what stopped destinations left: aiosmtpd's Controller closes its loop with
    sessions still open (a test that stops a server under a kept session does so on
    purpose), and their transports would warn whenever the garbage collector finds them,
    in whichever later test runs then. Other unraisable errors still reach pytest."""
    original = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if "Transport" not in type(unraisable.object).__name__:
            original(unraisable)

    sys.unraisablehook = hook
    try:
        gc.collect()
    finally:
        sys.unraisablehook = original
