"""aiosmtpd's SMTP protocol, with what the relay changes in it.

- MAIL and RCPT parse a plain `<local@domain>` without email's header parser
  (aiosmtpd 1.4's `_getaddr` builds a typing.Protocol class on every call, about
  0.2 ms per command); anything else goes to aiosmtpd.
- aiosmtpd's size replies get an enhanced status code (S552_TOO_BIG).
- Sessions are registered (for a graceful shutdown) and logged; on a +proxy
  listener the PROXY header names the client (handle_PROXY in handler.py).
- DATA is read into one buffer with a minimum data rate (datareader.py), not a list
  of per-line objects.

This overrides aiosmtpd private members (`_getaddr`, `_handler_coroutine`,
`_set_post_data_state`, `_reader`, `_call_handler_hook`, `smtp_DATA`) and relies on how
it renews the session at STARTTLS, so the aiosmtpd version is pinned (AIOSMTPD_VERSION,
pyproject.toml) and tests/test_aiosmtpd_pin.py fails when they change.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, syntax

from relay import replies as R
from relay.connections import ConnectionGate
from relay.contract.settings import SessionSettings
from relay.datareader import RateWatch, read_data
from relay.events import EventLog

AIOSMTPD_VERSION = "1.4.6"
PROXY_TIMEOUT = 10.0  # seconds a +proxy connection has to send its PROXY header
_ACCEPTED = R.S250_QUEUED.split("{", 1)[0]  # an accepted message starts the error count again
_NOT_COUNTED = ("421", R.S550_SUPPRESSED.split("<", 1)[0])  # closing; a suppressed recipient
_STRICT_ASCII = "500 Error: strict ASCII mode"
_PLAIN_ANGLE_ADDR = re.compile(r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+)>")


class _QuietAiosmtpd(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation on every successful AUTH: drop that line only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


def quiet_aiosmtpd() -> None:
    """aiosmtpd logs every connection at INFO (the relay logs its own JSON events) and
    warns that AUTH without TLS is allowed on implicit-TLS listeners, where the socket is
    TLS. Called when a relay starts, never at import."""
    log = logging.getLogger("mail.log")
    log.setLevel(logging.WARNING)
    if not any(isinstance(f, _QuietAiosmtpd) for f in log.filters):
        log.addFilter(_QuietAiosmtpd())
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")


def peer_of(session: Any) -> str:
    """The client's address: the one a trusted load balancer's PROXY header names, else
    the connection's own."""
    proxied = getattr(session, "proxy_data", None)
    if proxied is not None and getattr(proxied, "src_addr", None):
        return str(proxied.src_addr)
    return socket_peer(session)


def socket_peer(session: Any) -> str:
    """The address the connection itself comes from (a load balancer, when proxied)."""
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class RelaySMTP(SMTP):
    def __init__(
        self,
        handler: Any,
        *,
        mode: str,
        sessions: set[RelaySMTP],
        log: EventLog,
        proxy: bool = False,
        gate: ConnectionGate | None = None,
        limits: Callable[[], SessionSettings] = SessionSettings,
        **kwargs: Any,
    ) -> None:
        if proxy:  # aiosmtpd reads the header and calls the handler's handle_PROXY
            kwargs["proxy_protocol_timeout"] = PROXY_TIMEOUT
        super().__init__(handler, **kwargs)
        self.mode = mode
        self.proxy = proxy
        self.sessions = sessions
        self.log = log
        self.gate = gate
        self.limits = limits  # the applied relay.sessions, current at every call
        self.admitted: str | None = None  # the address the gate counts this connection for
        self.errors = 0  # error replies since the last accepted message

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _PLAIN_ANGLE_ADDR.match(arg)
        if match is not None:
            return match.group(1), arg[match.end() :].lstrip()
        address, rest = super()._getaddr(arg)
        return address, rest

    async def push(self, status: str) -> None:  # type: ignore[override]
        if status in R.AIOSMTPD_SIZE_REPLIES:
            status = R.S552_TOO_BIG.format(limit=self.data_size_limit)
        elif status == _STRICT_ASCII:  # aiosmtpd's reply to a non-ASCII argument
            status = R.S553_NOT_ASCII
        if status.startswith(_ACCEPTED):
            self.errors = 0
        elif status[:1] in "45" and not status.startswith(_NOT_COUNTED):
            self.errors += 1
            limits = self.limits()
            if self.errors >= limits.max_errors:  # Postfix's smtpd_hard_error_limit
                await super().push(status)
                self.log.emit("too_many_errors", peer=peer_of(self.session), errors=self.errors)
                self.close_with(R.S421_TOO_MANY_ERRORS)
                return
            if self.errors > limits.slow_after_errors:  # smtpd_soft_error_limit
                await asyncio.sleep(1.0)
        await super().push(status)

    def admit(self, peer: str) -> bool:
        """Count this connection for `peer`, or refuse it with 421 (connection caps)."""
        if self.gate is None:
            return True
        reply = self.gate.admit(peer)
        if reply is not None:
            self.log.emit("connection_refused", peer=peer, reply=reply)
            self.close_with(reply)
            return False
        self.admitted = peer
        return True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        upgrade = self.transport is not None  # STARTTLS re-enters here
        previous = self.session
        super().connection_made(transport)
        if upgrade:
            # aiosmtpd 1.4 starts a new session at STARTTLS: keep who the PROXY header named.
            if previous is not None and self.session is not None:
                self.session.proxy_data = previous.proxy_data
            return
        peer = peer_of(self.session)
        self.sessions.add(self)
        if self.proxy:
            return  # the real client is known after the PROXY header (handle_PROXY)
        if not self.admit(peer):
            if self._handler_coroutine is not None:
                self._handler_coroutine.cancel()  # no banner after the 421
            return
        self.log.emit("connect", peer=peer, listener=self.mode)

    def _abandon(self) -> None:
        """The current transaction ends without a 250: its reserved recipients go back."""
        abandon = getattr(self.event_handler, "abandon", None)
        if abandon is not None and getattr(self, "envelope", None) is not None:
            abandon(self.envelope)

    def _set_post_data_state(self) -> None:
        # aiosmtpd replaces the envelope here on RSET, HELO/EHLO, STARTTLS and after DATA
        # (before any handler hook sees it): the one place to see every transaction end.
        self._abandon()
        super()._set_post_data_state()  # type: ignore[no-untyped-call]

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA command, reading the message with read_data."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        limits = self.limits()
        watch = RateWatch(self._too_slow, limits.min_data_rate, limits.data_grace)
        try:
            result = await read_data(
                self._reader, self.data_size_limit, self.line_length_limit, watch
            )
        except asyncio.CancelledError:
            self._writer.close()
            raise
        finally:
            watch.cancel()
        if result.error is not None:
            self._set_post_data_state()
            await self.push(
                "500 Line too long (see RFC5321 4.5.3.1.6)"
                if result.error == "too_long"
                else "552 Error: Too much mail data"
            )
            return
        self.envelope.content = self.envelope.original_content = result.body
        del result
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)

    def _too_slow(self) -> None:
        rate = self.limits().min_data_rate
        self.log.emit("data_too_slow", peer=peer_of(self.session), min_rate=rate)
        self.close_with(R.S421_DATA_TOO_SLOW.format(rate=rate))

    def connection_lost(self, error: Exception | None) -> None:
        self._abandon()  # a transaction cut off
        if self.admitted is not None and self.gate is not None:
            self.gate.release(self.admitted)
            self.admitted = None
        super().connection_lost(error)
        if self in self.sessions:
            self.sessions.discard(self)
            self.log.emit("disconnect", peer=peer_of(self.session))

    def close_with(self, reply: str) -> None:
        """Send `reply` and close, unless the connection is already closing."""
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write((reply + "\r\n").encode())
            transport.close()
