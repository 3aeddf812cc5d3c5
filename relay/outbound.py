"""One SMTP transaction to one destination, reporting a reply per recipient.

STARTTLS is opportunistic by default (used when offered; a failed handshake falls back to
a plain connection), `required` for a smarthost that must encrypt, or `none`.
Certificates are not verified for opportunistic TLS, as RFC 7435 describes.

With a SessionCache (sessions.py), a session that ended its transaction well is reset
(RSET) and kept for the next message to the same address, as Postfix's connection
cache does; a kept session found closed at MAIL is replaced by a new one (nothing was
sent on it yet).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field

import aiosmtplib

from relay.sessions import SessionCache, SessionKey
from relay.sessions import quit_session as _quit


@dataclass(frozen=True)
class Reply:
    code: int
    text: str
    stage: str = "rcpt"  # dns | mail | rcpt | data | address | local

    @property
    def recipient_specific(self) -> bool:
        """A permanent failure about the address itself (unknown user, bad domain): the
        kind that may suppress it. A 5xx at MAIL or DATA, or a policy 5.7.x, may not."""
        if self.stage == "dns":
            return True
        if self.stage != "rcpt" or not self.permanent:
            return False
        enhanced = self.text.split(" ", 1)[0]
        if enhanced[:2] == "5." and enhanced.count(".") == 2:
            return enhanced.startswith(("5.1.", "5.2.1"))
        return self.code in (550, 551, 553)

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 300

    @property
    def permanent(self) -> bool:
        return 500 <= self.code < 600

    def __str__(self) -> str:
        return f"{self.code} {self.text}".strip()


class ConnectFailed(Exception):
    """No SMTP session with this address: try the next one, or defer."""


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class Transaction:
    helo: str
    sender: str
    recipients: list[str]
    message: bytes
    tls: str = "opportunistic"  # required | opportunistic | none
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    verify_host: str | None = None  # verify the certificate for this name (smarthost)
    cache: SessionCache | None = None
    body: str | None = None  # BODY=8BITMIME as the client declared it

    async def send(self, address: str, port: int) -> dict[str, Reply]:
        """Per-recipient replies; ConnectFailed when no usable session was had (try the next
        address or defer). Bounded by a total deadline of a few command timeouts."""
        bad = [r for r in self.recipients if not _encodable(r)]
        if bad:
            return {
                r: Reply(553, "5.1.3 address cannot be sent as ASCII", "address")
                for r in self.recipients
            }
        try:
            return await asyncio.wait_for(self._send_any(address, port), self.timeout * 4)
        except TimeoutError:
            raise ConnectFailed(
                f"{address}:{port}: no complete answer within {self.timeout * 4:g}s"
            ) from None

    async def _send_any(self, address: str, port: int) -> dict[str, Reply]:
        try:
            return await self._send(address, port, use_tls=self.tls != "none")
        except _TlsFailed:
            if self.tls == "required":
                raise ConnectFailed(f"{address}:{port}: STARTTLS required but failed") from None
            return await self._send(address, port, use_tls=False)

    async def _send(self, address: str, port: int, use_tls: bool) -> dict[str, Reply]:
        key = (address, port, use_tls, self.tls, self.username or "", self.verify_host or "")
        kept = self.cache.take(key) if self.cache is not None else None
        if kept is not None:
            client, uses = kept
            try:
                replies = await self._transaction(client, kept=True)
            except _Stale:
                client.close()  # closed while it waited: a new session below
            else:
                await self._release(key, client, uses + 1, replies)
                return replies
        client = aiosmtplib.SMTP(
            hostname=address,
            port=port,
            local_hostname=self.helo,
            start_tls=False,
            timeout=self.timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise ConnectFailed(f"{address}:{port}: {exc}") from None
        if self.cache is not None:
            self.cache.opened += 1
        try:
            await self._prepare(client, address, use_tls)
            replies = await self._transaction(client)
        except (_TlsFailed, ConnectFailed):
            await _quit(client)
            raise
        except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
            await _quit(client)
            # timeouts, disconnects, EHLO or AUTH refusals: no usable session here
            raise ConnectFailed(f"{address}:{port}: {type(exc).__name__}: {exc}") from None
        await self._release(key, client, 1, replies)
        return replies

    async def _release(
        self, key: SessionKey, client: aiosmtplib.SMTP, uses: int, replies: dict[str, Reply]
    ) -> None:
        """Keep a session that ended well for the next message (after RSET), else QUIT."""
        healthy = all(r.code != 421 for r in replies.values())
        if self.cache is not None and healthy and self.cache.wants(key, uses):
            try:
                await client.rset()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
                return
            self.cache.give(key, client, uses)
            return
        await _quit(client)

    async def _prepare(self, client: aiosmtplib.SMTP, address: str, use_tls: bool) -> None:
        await client.ehlo()
        encrypted = False
        if use_tls and client.supports_extension("starttls"):
            context = ssl.create_default_context() if self.verify_host else _insecure()
            try:
                await client.starttls(tls_context=context, server_hostname=self.verify_host)
            except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                raise _TlsFailed(str(exc)) from None
            encrypted = True
        elif self.tls == "required":
            raise ConnectFailed(f"{address}: STARTTLS required but not offered")
        if self.username:
            if not encrypted:
                raise ConnectFailed(
                    f"{address}: refusing to send the smarthost password without TLS"
                )
            await client.login(self.username, self.password or "")

    async def _transaction(self, client: aiosmtplib.SMTP, kept: bool = False) -> dict[str, Reply]:
        options = []
        if self.body == "8BITMIME" and client.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")  # RFC 6152: declared, and the next hop takes it
        try:
            await client.mail(self.sender, options=options)
        except (aiosmtplib.SMTPServerDisconnected, OSError) as exc:
            if kept:
                raise _Stale(str(exc)) from None
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if kept and exc.code == 421:
                raise _Stale(exc.message) from None
            reply = Reply(exc.code, exc.message, "mail")
            return {r: reply for r in self.recipients}
        replies: dict[str, Reply] = {}
        accepted = []
        for rcpt in self.recipients:
            try:
                response = await client.rcpt(rcpt)
                accepted.append(rcpt)
                replies[rcpt] = Reply(response.code, response.message)
            except aiosmtplib.SMTPResponseException as exc:
                replies[rcpt] = Reply(exc.code, exc.message, "rcpt")
        if not accepted:
            return replies
        try:
            response = await client.data(self.message)
            final = Reply(response.code, response.message, "data")
        except aiosmtplib.SMTPResponseException as exc:
            final = Reply(exc.code, exc.message, "data")
        for rcpt in accepted:
            replies[rcpt] = final
        return replies


class _TlsFailed(Exception):
    pass


class _Stale(Exception):
    """A kept session that the server closed while it waited."""


def _encodable(address: str) -> bool:
    return address.isascii() and address.isprintable() and " " not in address
